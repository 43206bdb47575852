#include "parley/node/node.h"

#include <fcntl.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpprest/json.h>
#include <boost/asio.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "data_dir.h"
#include "federation_client.h"
#include "key_documents.h"
#include "parley/address.h"
#include "parley/crypto/password.h"
#include "parley/crypto/secret.h"
#include "parley/crypto/sign.h"
#include "parley/federation/key_document.h"
#include "parley/federation/peers.h"
#include "parley/message.h"
#include "parley/node/admin_api.h"
#include "parley/node/core.h"
#include "parley/node/federation_api.h"
#include "parley/node/federation_sender.h"
#include "parley/node/gateway.h"
#include "parley/node/metrics_endpoint.h"
#include "parley/node/retention.h"
#include "parley/node/sd_notify.h"
#include "parley/store/checkpointer.h"
#include "parley/store/database.h"
#include "parley/store/node_schema.h"
#include "remote_queries.h"

namespace parley::node {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

class SystemClock : public Clock {
 public:
  std::int64_t now_ms() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// Argon2id verification on a small pool so neither network nor core threads stall on it.
class PoolPasswordWork : public PasswordWork {
 public:
  PoolPasswordWork(asio::io_context& core_ctx, std::size_t threads)
      : core_ctx_(core_ctx), pool_(threads) {}
  ~PoolPasswordWork() override { pool_.join(); }
  void verify(std::string stored_hash, std::string password,
              std::function<void(bool)> done) override {
    asio::post(pool_, [this, h = std::move(stored_hash), p = crypto::SecretBytes(password),
                       done = std::move(done)]() mutable {
      const bool ok = crypto::verify_password(h, p.view());
      p.wipe();
      asio::post(core_ctx_, [done = std::move(done), ok] { done(ok); });
    });
    crypto::SecretBytes(std::move(password)).wipe();
  }
  void stop() { pool_.join(); }

 private:
  asio::io_context& core_ctx_;
  asio::thread_pool pool_;
};

// Measures how late a once-a-second timer fires on an io_context's thread (its event-loop lag).
class LagProbe {
 public:
  LagProbe(asio::io_context& ctx, std::atomic<std::int64_t>& last, std::atomic<std::int64_t>* max)
      : timer_(ctx), last_(last), max_(max) {}
  void start() { arm(); }
  // A tick that already fired but has not run yet sees stopped_ and does not arm again (else the
  // io_context would never run out of work and its thread never end).
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }

 private:
  void arm() {
    if (stopped_) return;
    due_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    timer_.expires_at(due_);
    timer_.async_wait([this](const boost::system::error_code& e) {
      if (e) return;
      const auto lag = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - due_)
                           .count();
      last_.store(lag, std::memory_order_relaxed);
      if (max_ && lag > max_->load(std::memory_order_relaxed)) {
        max_->store(lag, std::memory_order_relaxed);
      }
      arm();
    });
  }
  asio::steady_timer timer_;
  bool stopped_ = false;  // on the timer's thread
  std::chrono::steady_clock::time_point due_;
  std::atomic<std::int64_t>& last_;
  std::atomic<std::int64_t>* max_;
};

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("parleyd");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l %v", spdlog::pattern_time_type::utc);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

// Makes table node_keys agree with DATA/node.key: a key file not yet current in the table (a new
// node, an older database, or a rotation interrupted after the file was replaced) becomes the
// current key, keeping the endorsement a rotation stored with it, and the previous current key
// expires now.
Status reconcile_node_keys(store::Database& db, const std::string& public_key,
                           std::int64_t now_ms) {
  PARLEY_ASSIGN_OR_RETURN(find, db.prepare("SELECT until_ms FROM node_keys WHERE public_key = ?"));
  find.bind_blob(1, public_key);
  PARLEY_ASSIGN_OR_RETURN(known, find.step());
  const bool pending = known && find.column_int64(0) == -1;
  if (known && !pending) return ok_status();
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db));
  {
    PARLEY_ASSIGN_OR_RETURN(st, db.prepare("UPDATE node_keys SET until_ms = ? WHERE until_ms = 0"));
    PARLEY_TRY(st.bind(1, now_ms).run());
  }
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db.prepare("INSERT INTO node_keys(public_key, from_ms, until_ms) VALUES(?, ?, 0) "
                       "ON CONFLICT(public_key) DO UPDATE SET from_ms = excluded.from_ms, "
                       "until_ms = 0"));
    PARLEY_TRY(st.bind_blob(1, public_key).bind(2, now_ms).run());
  }
  return tx.commit();
}

Result<federation::KeyDocument> load_key_document(store::Database& db, const std::string& name) {
  federation::KeyDocument doc{name, {}};
  PARLEY_ASSIGN_OR_RETURN(st, db.prepare("SELECT public_key, from_ms, until_ms, prev_sig FROM "
                                         "node_keys WHERE until_ms >= 0 ORDER BY from_ms"));
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    doc.keys.push_back(
        {st.column_text(0), st.column_int64(1), st.column_int64(2), st.column_text(3)});
  }
  return doc;
}

}  // namespace

Result<std::string> rotate_node_key(const std::string& data_dir) {
  if (!crypto::init()) return make_error("internal", "libsodium failed to initialise");
  const DataPaths paths{data_dir};
  PARLEY_ASSIGN_OR_RETURN(lock, DirLock::take(paths.lock(), data_dir));
  PARLEY_ASSIGN_OR_RETURN(db, store::Database::open(paths.database()));
  PARLEY_TRY(store::migrate_node_database(*db));
  PARLEY_ASSIGN_OR_RETURN(config, load_config(paths.config()));
  PARLEY_ASSIGN_OR_RETURN(old_key, crypto::load_signing_key(paths.node_key()));
  PARLEY_TRY(reconcile_node_keys(*db, old_key.public_key(), SystemClock().now_ms()));
  const auto key = crypto::SigningKey::generate();
  // The pending row with the old key's endorsement first, then the file (atomic rename), then the
  // row becomes current: an interruption after the rename is completed by reconcile_node_keys at
  // the next start; one before it leaves an unused pending row.
  {
    PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(*db));
    PARLEY_ASSIGN_OR_RETURN(del, db->prepare("DELETE FROM node_keys WHERE until_ms = -1"));
    PARLEY_TRY(del.run());
    PARLEY_ASSIGN_OR_RETURN(
        ins, db->prepare("INSERT INTO node_keys(public_key, from_ms, until_ms, prev_sig) "
                         "VALUES(?, 0, -1, ?)"));
    PARLEY_TRY(ins.bind_blob(1, key.public_key())
                   .bind_blob(2, old_key.sign(
                                     federation::endorsement_input(config.name, key.public_key())))
                   .run());
    PARLEY_TRY(tx.commit());
  }
  PARLEY_TRY(crypto::save_signing_key(paths.node_key(), key));
  PARLEY_TRY(reconcile_node_keys(*db, key.public_key(), SystemClock().now_ms()));
  return crypto::format_public_key(key.public_key());
}

Result<std::string> read_admin_token(const std::string& data_dir) {
  const std::string path = DataPaths{data_dir}.admin_token();
  std::ifstream in(path);
  if (!in) return make_error("io", "cannot read " + path + " (is this a parleyd data directory?)");
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) return make_error("io", path + " is empty");
  return token;
}

Result<InitResult> init_node(const InitOptions& o) {
  if (!crypto::init()) return make_error("internal", "libsodium failed to initialise");
  const DataPaths paths{o.data_dir};
  std::error_code ec;
  if (fs::exists(paths.config(), ec) || fs::exists(paths.database(), ec) ||
      fs::exists(paths.node_key(), ec)) {
    return make_error("exists", o.data_dir + " already holds a Parley node; refusing to overwrite");
  }
  NodeConfig c;
  c.name = o.name;
  PARLEY_TRY(wire::validate_domain(c.name));
  if (o.client_listen) c.client_listen = *o.client_listen;
  if (o.federation_listen) c.federation_listen = *o.federation_listen;
  if (o.admin_listen) c.admin_listen = *o.admin_listen;
  c.metrics_listen = o.metrics_listen ? *o.metrics_listen : HostPort{"127.0.0.1", 7423};
  if (o.direct_messages) c.direct_messages = *o.direct_messages;
  if (o.password_strength) c.password_strength = *o.password_strength;
  c.allow_plaintext_remote = o.allow_plaintext_remote;
  PARLEY_TRY(check_exposure(c));

  fs::create_directories(o.data_dir, ec);
  if (ec) return make_error("io", "cannot create " + o.data_dir + ": " + ec.message());
  ::chmod(o.data_dir.c_str(), 0700);

  const auto key = crypto::SigningKey::generate();
  PARLEY_TRY(crypto::save_signing_key(paths.node_key(), key));
  PARLEY_TRY(write_private_file(paths.admin_token(),
                                crypto::base64_encode(crypto::random_bytes(32)) + "\n"));
  {
    PARLEY_ASSIGN_OR_RETURN(db, store::Database::open(paths.database()));
    PARLEY_TRY(store::migrate_node_database(*db));
    PARLEY_ASSIGN_OR_RETURN(
        st, db->prepare("INSERT INTO node_meta(key, value) VALUES('name', ?), ('created_ms', ?)"));
    PARLEY_TRY(st.bind(1, c.name).bind(2, std::to_string(SystemClock().now_ms())).run());
    PARLEY_TRY(reconcile_node_keys(*db, key.public_key(), SystemClock().now_ms()));
  }
  ::chmod(paths.database().c_str(), 0600);
  // The config goes last: its presence marks a complete node.
  PARLEY_TRY(write_private_file(paths.config(), render_config(c)));
  return InitResult{crypto::format_public_key(key.public_key()), c};
}

Status serve(const std::string& data_dir) {
  if (!crypto::init()) return make_error("internal", "libsodium failed to initialise");
  const DataPaths paths{data_dir};
  std::error_code ec;
  if (!fs::exists(paths.config(), ec)) {
    return make_error("not_found", "no Parley node in " + data_dir + " (run parleyd init first)");
  }
  PARLEY_ASSIGN_OR_RETURN(lock, DirLock::take(paths.lock(), data_dir));
  PARLEY_ASSIGN_OR_RETURN(config, load_config(paths.config()));
  setup_logging(config.log_level);
  store::Database::Options db_options;
  db_options.fault_file = config.test_fault_file;
  if (!config.test_fault_file.empty()) {
    spdlog::warn("event=fault_injection file={} (storage.test_fault_file: tests only)",
                 config.test_fault_file);
  }
  db_options.auto_checkpoint = false;  // the checkpointer's thread does it (below)
  PARLEY_ASSIGN_OR_RETURN(db, store::Database::open(paths.database(), db_options));
  PARLEY_TRY(store::migrate_node_database(*db, [] {
    spdlog::warn(
        "event=database_converting to=auto_vacuum_incremental (once; the database is "
        "rewritten, which takes a while on a large one)");
  }));
  PARLEY_ASSIGN_OR_RETURN(checkpointer, store::Checkpointer::start(paths.database(), db_options,
                                                                   std::chrono::milliseconds(100)));
  if (config.max_database_mb > 0) {
    // SQLite refuses to grow the file past this many pages: writes fail with "disk_full".
    PARLEY_ASSIGN_OR_RETURN(page, db->prepare("PRAGMA page_size"));
    PARLEY_TRY(page.step().status());
    const std::int64_t pages = std::int64_t{config.max_database_mb} * 1024 * 1024 /
                               std::max<std::int64_t>(page.column_int64(0), 512);
    PARLEY_TRY(db->exec("PRAGMA max_page_count = " + std::to_string(pages)));
  }
  PARLEY_ASSIGN_OR_RETURN(key, crypto::load_signing_key(paths.node_key()));
  PARLEY_ASSIGN_OR_RETURN(token, read_admin_token(data_dir));
  PARLEY_ASSIGN_OR_RETURN(dummy, crypto::hash_password(crypto::hex_encode(crypto::random_bytes(16)),
                                                       config.password_strength));

  asio::io_context core_ctx(1);
  asio::io_context net_ctx(1);
  auto core_guard = asio::make_work_guard(core_ctx);
  auto net_guard = asio::make_work_guard(net_ctx);
  SystemClock clock;
  PoolPasswordWork passwords(core_ctx, 2);
  Core core(config, *db, clock, passwords, dummy);
  Gateway gateway(net_ctx, core_ctx, core, config);
  PARLEY_TRY(gateway.listen(config.client_listen));
  Metrics metrics;

  // The core-thread task owns the promise: set_value may still touch it after waking the
  // waiter, so it must not live on the waiter's stack (which is gone once wait() returns).
  auto run_on_core = [&core_ctx, &core](std::function<void(Core&)> f) {
    auto done = std::make_shared<std::promise<void>>();
    auto finished = done->get_future();
    asio::post(core_ctx, [&core, &f, done] {
      try {
        f(core);
        done->set_value();
      } catch (...) {
        done->set_exception(std::current_exception());
      }
    });
    finished.get();
  };
  Retention retention(*db);
  AdminContext admin_ctx{
      token,          data_dir,    paths.database(),
      config,         run_on_core, [&gateway] { return gateway.queued_frames(); },
      clock.now_ms(), &retention,  &metrics};
  AdminApi admin(admin_ctx);
  PARLEY_TRY(admin.start());

  const std::int64_t started_ms = clock.now_ms();
  std::atomic<const FederationApi*> federation_stats{nullptr};  // set once it exists
  MetricsEndpoint metrics_endpoint(metrics, [&] {
    Snapshot s;
    s.connections = gateway.open_connections();
    s.queued_frames = gateway.queued_frames();
    s.client_refused_max_connections = gateway.refused_max_connections();
    s.client_refused_per_source = gateway.refused_per_source();
    s.client_queued_bytes = gateway.queued_bytes();
    s.client_slow_consumers = gateway.slow_consumers();
    s.database_bytes =
        store::file_bytes(paths.database()) + store::file_bytes(paths.database() + "-wal");
    s.uptime_seconds = (SystemClock().now_ms() - started_ms) / 1000;
    if (auto* f = federation_stats.load()) s.listeners.push_back(f->stats());
    run_on_core([&s](Core& c) {
      auto peers = federation::PeerStore(c.database()).list();
      if (!peers.ok()) return;
      for (const auto& p : *peers) s.peers.push_back({p.name, p.queued, p.failures});
    });
    return s;
  });
  if (config.metrics_listen) PARLEY_TRY(metrics_endpoint.start(*config.metrics_listen));

  PARLEY_TRY(reconcile_node_keys(*db, key.public_key(), SystemClock().now_ms()));
  PARLEY_ASSIGN_OR_RETURN(doc, load_key_document(*db, config.name));
  PARLEY_ASSIGN_OR_RETURN(doc_bytes, federation::encode_key_document(doc, key));
  FederationClient fed_client(config, key, run_on_core);
  FederationSender sender(config, fed_client, run_on_core);
  KeyDocuments key_documents(fed_client, core_ctx);
  FederationApi federation_api(
      FederationContext{config, doc_bytes, run_on_core,
                        [&sender](const std::string& peer) { sender.heard_from(peer); },
                        &fed_client, &key_documents});
  federation_stats = &federation_api;
  PoolRemoteQueries remote_queries(core_ctx, fed_client);
  // Every few seconds the core asks again for the causal past of group events that wait for it.
  asio::steady_timer conv_timer(core_ctx);
  // Set on the core thread at shutdown: periodic work that already fired does not arm again.
  bool core_stopping = false;
  std::function<void()> conv_tick = [&] {
    if (core_stopping) return;
    core.conv_tick();
    // Outbound events past federation.queue_lifetime_seconds are dropped.
    if (auto expired = core.expire_outbox(); !expired.ok()) {
      spdlog::warn("event=federation_expire_failed reason=\"{}\"", expired.error().message);
    }
    conv_timer.expires_after(std::chrono::seconds(3));
    conv_timer.async_wait([&](const boost::system::error_code& e) {
      if (!e) conv_tick();
    });
  };
  // The retention purge: every retention.purge_interval_seconds a run starts and goes step by
  // step (one short transaction each), leaving the core free for traffic between steps.
  std::atomic<std::uint32_t> purge_interval{config.purge_interval_seconds};
  std::atomic<std::uint32_t> purge_batch{config.purge_batch};
  asio::steady_timer purge_timer(core_ctx);
  std::function<void()> purge_tick = [&] {
    if (core_stopping) return;
    std::chrono::milliseconds next = std::chrono::seconds(
        std::max<std::uint32_t>(purge_interval.load() ? purge_interval.load() : 60, 1));
    if (purge_interval.load() > 0 || retention.running()) {
      auto p = retention.step(clock.now_ms(), static_cast<int>(purge_batch.load()));
      if (!p.ok()) {
        spdlog::warn("event=retention_purge_failed reason=\"{}\" (tried again next time)",
                     p.error().message);
      } else if (!p->done) {
        next = std::chrono::milliseconds(20);
      } else {
        const auto& c = p->counts;
        metrics.purged_messages.fetch_add(c.messages, std::memory_order_relaxed);
        metrics.purged_stream_entries.fetch_add(c.stream_entries, std::memory_order_relaxed);
        spdlog::log(c.messages || c.stream_entries || c.pages_freed ? spdlog::level::info
                                                                    : spdlog::level::debug,
                    "event=retention_purged messages={} stream_entries={} pages_freed={} "
                    "millis={}",
                    c.messages, c.stream_entries, c.pages_freed, p->finished_ms - p->started_ms);
      }
    }
    purge_timer.expires_after(next);
    purge_timer.async_wait([&](const boost::system::error_code& e) {
      if (!e) purge_tick();
    });
  };
  sender.set_metrics(&metrics);
  asio::post(core_ctx,
             [&core, &sender, &remote_queries, &key_documents, &key, &conv_tick, &metrics] {
               core.set_metrics(&metrics);
               core.set_outbox_listener([&sender] { sender.wake(); });
               core.set_remote_queries(&remote_queries);
               core.set_origin_keys(&key_documents);
               core.set_node_key(&key);
               conv_tick();
             });
  asio::post(core_ctx, [&] {
    // The first run a minute after start (not while the node is busy catching up), or sooner
    // with a shorter interval.
    purge_timer.expires_after(
        std::chrono::seconds(std::clamp<std::uint32_t>(purge_interval.load(), 1, 60)));
    purge_timer.async_wait([&](const boost::system::error_code& e) {
      if (!e) purge_tick();
    });
  });
  if (!config.federation_tls_cert.empty() || config.federation_allow_plaintext) {
    PARLEY_TRY(federation_api.start());
  } else {
    spdlog::warn(
        "event=federation_disabled reason=\"no federation.tls_cert configured and "
        "federation.allow_plaintext_http is false\"");
  }

  std::thread core_thread([&] { core_ctx.run(); });
  sender.start();
  // Tell the peers this node is back, so queues waiting for it stop backing off at once.
  asio::post(core_ctx, [&core, &remote_queries] {
    auto peers = federation::PeerStore(core.database()).list();
    if (!peers.ok()) return;
    const bool allowlist = core.config().federation_policy == "allowlist";
    for (const auto& p : *peers) {
      if (p.state != "allowed" || (allowlist && !p.listed)) continue;
      remote_queries.query(p.name, "hello", wire::MapWriter().finish(),
                           [name = p.name](Result<std::string> r) {
                             if (!r.ok()) {
                               spdlog::debug("event=peer_hello_failed peer={} reason=\"{}\"", name,
                                             r.error().message);
                             }
                           });
    }
  });
  std::thread net_thread([&] { net_ctx.run(); });

  // Event-loop lag: a once-a-second tick on each thread measures how late it runs.
  LagProbe core_lag(core_ctx, metrics.core_lag_micros, &metrics.core_lag_max_micros);
  LagProbe net_lag(net_ctx, metrics.net_lag_micros, nullptr);
  asio::post(core_ctx, [&core_lag] { core_lag.start(); });
  asio::post(net_ctx, [&net_lag] { net_lag.start(); });
  // systemd's watchdog: the network thread asks the core thread to ping, so a stuck core
  // (not only a stuck process) gets the node restarted.
  asio::steady_timer watchdog(net_ctx);
  std::function<void()> watchdog_tick;
  if (const auto every = sd_watchdog_interval()) {
    watchdog_tick = [&, half = *every / 2] {
      asio::post(core_ctx, [] { sd_notify("WATCHDOG=1"); });
      watchdog.expires_after(half);
      watchdog.async_wait([&](const boost::system::error_code& e) {
        if (!e) watchdog_tick();
      });
    };
    asio::post(net_ctx, [&] { watchdog_tick(); });
  }

  // SIGHUP re-reads config.toml and applies what can change while serving (config.h); on the
  // network thread, which owns the gateway's view of the configuration.
  const auto reload = [&] {
    sd_notify(sd_reloading_state());
    auto fresh = load_config(paths.config());
    Status usable = fresh.ok() ? check_exposure(*fresh) : Status(fresh.error());
    if (!usable.ok()) {
      spdlog::error("event=reload_refused reason=\"{}\" (the running configuration stays)",
                    usable.error().message);
      sd_notify("READY=1\nSTATUS=serving; reload refused: " + usable.error().message);
      return;
    }
    for (const auto& k : restart_only_changes(config, *fresh)) {
      spdlog::warn("event=reload_needs_restart key={} (kept until the next start)", k);
    }
    take_reloadable(config, *fresh);
    spdlog::set_level(spdlog::level::from_str(config.log_level));
    asio::post(core_ctx, [&core, f = config] { core.reload(f); });
    purge_interval = config.purge_interval_seconds;
    purge_batch = config.purge_batch;
    federation_api.reload(config);
    spdlog::info("event=reloaded log_level={} dm_policy={} federation_policy={}", config.log_level,
                 to_string(config.direct_messages), config.federation_policy);
    sd_notify("READY=1\nSTATUS=serving (configuration reloaded)");
  };
  std::promise<int> stop;
  asio::signal_set signals(net_ctx, SIGINT, SIGTERM, SIGHUP);
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](const boost::system::error_code& e, int sig) {
      if (e) return;
      if (sig == SIGHUP) {
        reload();
        return wait_signal();
      }
      stop.set_value(sig);
    });
  };
  wait_signal();
  spdlog::info("event=serving node={} version={} client={} admin={} metrics={} key={} pid={}",
               config.name, PARLEY_VERSION, config.client_listen.str(), config.admin_listen.str(),
               config.metrics_listen ? config.metrics_listen->str() : "off",
               crypto::format_public_key(key.public_key()), ::getpid());
  metrics_endpoint.set_ready(true, "");
  sd_notify("READY=1\nSTATUS=serving " + config.name + " on " + config.client_listen.str());

  const int sig = stop.get_future().get();
  spdlog::info("event=stopping signal={}", sig);
  sd_notify("STOPPING=1");
  // A stop that takes long says where it is, so a hang can be told apart from slow work.
  std::atomic<const char*> stage{"listeners"};
  std::promise<void> stopped;
  std::thread stop_watch([&stage, done = stopped.get_future()] {
    while (done.wait_for(std::chrono::seconds(10)) == std::future_status::timeout) {
      spdlog::error("event=stopping_slowly stage={}", stage.load());
    }
  });
  metrics_endpoint.set_ready(false, "stopping");
  asio::post(net_ctx, [&gateway, &watchdog] {
    gateway.stop_accepting();
    watchdog.cancel();
  });
  admin.stop();
  metrics_endpoint.stop();
  federation_api.stop();
  stage = "federation_sender";
  sender.stop();
  stage = "client_connections";
  asio::post(core_ctx, [&core] { core.close_all("shutdown", "the node is shutting down"); });
  // Let connections write their bye frames, bounded.
  for (int i = 0; i < 40 && gateway.open_connections() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  net_guard.reset();
  net_ctx.stop();
  stage = "network_thread";
  net_thread.join();
  stage = "workers";
  passwords.stop();
  remote_queries.stop();  // its answers are posted to the core thread, still running here
  key_documents.stop();   // likewise
  asio::post(core_ctx, [&conv_timer, &core_lag, &purge_timer, &core_stopping] {
    core_stopping = true;
    conv_timer.cancel();
    purge_timer.cancel();
    core_lag.stop();
  });
  core_guard.reset();
  stage = "core_thread";
  core_thread.join();  // finishes queued core work
  stage = "database";
  checkpointer->stop();
  db.reset();  // checkpoints and closes the database
  stopped.set_value();
  stop_watch.join();
  spdlog::info("event=stopped");
  return ok_status();
}

}  // namespace parley::node
