// Send and delivery latency through a running parleyd (bench/run.sh starts one).
//
// A sender device sends N messages one after another, each waiting for its server
// acknowledgement (which the node gives only after the message is committed with
// synchronous=FULL); a receiver device in live mode records when each arrives. Also times the
// machine's floor for a durable commit: write 4 KiB + fdatasync on the same filesystem.
// Prints medians and percentiles; bench/README.md records the figures.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "parley/client/session.h"
#include "parley/crypto/secret.h"

using namespace parley;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0, Clock::time_point t1) {
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

std::unique_ptr<client::Profile> profile(const std::string& dir) {
  auto p = client::Profile::open(dir);
  if (!p.ok()) {
    std::fprintf(stderr, "profile: %s\n", p.error().message.c_str());
    std::exit(1);
  }
  return std::move(p).value();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: send_bench SERVER WORKDIR COUNT BODY_BYTES\n");
    return 2;
  }
  const std::string server = argv[1], work = argv[2];
  const int count = std::atoi(argv[3]);
  const std::size_t body_bytes = static_cast<std::size_t>(std::atoi(argv[4]));
  crypto::init();

  // The floor: one durable 4 KiB append on this filesystem.
  std::vector<double> fsyncs;
  {
    const std::string path = work + "/fsync-probe";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const std::string page(4096, 'x');
    for (int i = 0; i < 200; ++i) {
      const auto t0 = Clock::now();
      if (::write(fd, page.data(), page.size()) < 0 || ::fdatasync(fd) != 0) return 1;
      fsyncs.push_back(ms_since(t0, Clock::now()));
    }
    ::close(fd);
    ::unlink(path.c_str());
  }

  auto sp = profile(work + "/sender"), rp = profile(work + "/receiver");
  auto sender = client::Session::login(*sp, server, "sender@bench.local", "bench password 1",
                                       "bench", nullptr);
  if (!sender.ok()) {
    std::fprintf(stderr, "login: %s\n", sender.error().message.c_str());
    return 1;
  }
  std::mutex mu;
  std::map<std::uint64_t, Clock::time_point> arrived;
  std::atomic<bool> stop{false};
  auto receiver = client::Session::login(*rp, server, "receiver@bench.local", "bench password 1",
                                         "bench", [&](const wire::View& ev) {
                                           if (ev.str_or("kind", "").value() != "msg") return;
                                           std::lock_guard<std::mutex> lock(mu);
                                           arrived[ev.uint("cseq").value()] = Clock::now();
                                         });
  if (!receiver.ok()) return 1;
  std::thread rx([&] {
    while (!stop) (void)(*receiver)->pump(50);
  });

  std::map<std::uint64_t, Clock::time_point> sent_at;
  std::vector<double> acks;
  const std::string body(body_bytes, 'b');
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    wire::MapWriter f;
    f.add("to", "receiver@bench.local")
        .add("msg_id", "b" + std::to_string(i))
        .add_bin("body", body);
    const auto t0 = Clock::now();
    auto r = (*sender)->call("send", f);
    const auto t1 = Clock::now();
    if (!r.ok()) {
      std::fprintf(stderr, "send: %s\n", r.error().message.c_str());
      return 1;
    }
    acks.push_back(ms_since(t0, t1));
    sent_at[r->root().uint("cseq").value()] = t0;
  }
  const double total_s = ms_since(start, Clock::now()) / 1000.0;
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (arrived.size() >= sent_at.size()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  stop = true;
  rx.join();
  std::vector<double> delivery;
  for (const auto& [cseq, t] : arrived) {
    if (auto it = sent_at.find(cseq); it != sent_at.end())
      delivery.push_back(ms_since(it->second, t));
  }
  std::printf("messages sent            %d x %zu bytes, %zu received live\n", count, body_bytes,
              delivery.size());
  std::printf("durable 4 KiB fdatasync  median %.3f ms  p99 %.3f ms\n", pct(fsyncs, 0.5),
              pct(fsyncs, 0.99));
  std::printf(
      "send -> server ack       median %.3f ms  p99 %.3f ms  (%.1f x the fdatasync median)\n",
      pct(acks, 0.5), pct(acks, 0.99), pct(acks, 0.5) / pct(fsyncs, 0.5));
  std::printf("send -> live delivery    median %.3f ms  p99 %.3f ms\n", pct(delivery, 0.5),
              pct(delivery, 0.99));
  std::printf("sequential throughput    %.0f messages/s on one connection\n", count / total_s);
  return delivery.size() == static_cast<std::size_t>(count) ? 0 : 1;
}
