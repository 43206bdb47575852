// The admin HTTP API on loopback, used by `parleyd user ...`, `status` and `backup`.
// Every request must carry "Authorization: Bearer <DATA/admin.token>"; bodies are JSON. Routes
// and payloads: spec/admin-api.md. Handlers run on the admin listener's own workers
// (node/http_server.h) and reach the Core only through `run_on_core`, which executes a function on
// the core thread and waits for it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "parley/node/config.h"
#include "parley/result.h"

namespace parley::node {

class Core;
class Retention;
struct Metrics;

struct AdminContext {
  std::string token;
  std::string data_dir;
  std::string database_path;
  NodeConfig config;
  std::function<void(std::function<void(Core&)>)> run_on_core;  // blocks until done
  std::function<std::int64_t()> queued_frames;
  std::int64_t started_ms = 0;
  Retention* retention = nullptr;  // used on the core thread only (through run_on_core)
  Metrics* metrics = nullptr;
};

class AdminApi {
 public:
  explicit AdminApi(AdminContext context);
  ~AdminApi();
  Status start();
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::node
