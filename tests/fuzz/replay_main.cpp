// Runs a fuzz target without libFuzzer: every file of the corpus directories given on the command
// line, then a fixed number of deterministic mutations of them. A crash or sanitizer report fails
// the test; ctest runs this on every build.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    for (const auto& e : std::filesystem::directory_iterator(argv[i])) {
      std::ifstream in(e.path(), std::ios::binary);
      inputs.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "no corpus inputs found\n");
    return 1;
  }
  std::mt19937 rng(12345);
  std::size_t runs = 0;
  for (const auto& s : inputs) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    ++runs;
  }
  for (int round = 0; round < 20000; ++round) {
    std::string s = inputs[rng() % inputs.size()];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
        case 0:
          if (!s.empty()) s[rng() % s.size()] = static_cast<char>(rng());
          break;
        case 1:
          s.insert(s.begin() + static_cast<long>(s.empty() ? 0 : rng() % s.size()),
                   static_cast<char>(rng()));
          break;
        case 2:
          if (!s.empty()) s.erase(rng() % s.size(), 1 + rng() % 4);
          break;
        case 3:
          s += inputs[rng() % inputs.size()];
          break;
      }
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    ++runs;
  }
  std::printf("replayed %zu inputs (%zu corpus files)\n", runs, inputs.size());
  return 0;
}
