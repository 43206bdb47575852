#include "anywhere_option.h"

#include <cstdlib>

namespace parley::cli {

AnywhereOption::AnywhereOption(CLI::App& app, std::string flag, const std::string& help,
                               const char* env, std::string fallback)
    : flag_(std::move(flag)), fallback_(std::move(fallback)) {
  if (env) {
    if (const char* v = std::getenv(env)) {
      env_value_ = v;
      env_set_ = true;
    }
  }
  add_to(app, help);
}

void AnywhereOption::add_to(CLI::App& app, const std::string& help) {
  slots_.emplace_back();
  options_.push_back(app.add_option(flag_, slots_.back(), help));
  // Option groups are nameless subcommands that share their parent's options: skip them.
  for (CLI::App* sub : app.get_subcommands([](CLI::App* a) { return !a->get_name().empty(); })) {
    add_to(*sub, help);
  }
}

Result<std::string> AnywhereOption::value() const {
  const std::string* given = nullptr;
  for (std::size_t i = 0; i < options_.size(); ++i) {
    if (options_[i]->count() == 0) continue;
    if (given && *given != slots_[i]) {
      return make_error("bad_request",
                        flag_ + " given twice with different values: " + *given + ", " + slots_[i]);
    }
    given = &slots_[i];
  }
  if (given) return *given;
  if (env_set_) return env_value_;
  return fallback_;
}

}  // namespace parley::cli
