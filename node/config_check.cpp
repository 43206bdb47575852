#include "parley/node/config_check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cpprest/http_client.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>

#include "parley/crypto/sign.h"
#include "parley/federation/key_document.h"
#include "parley/federation/peers.h"
#include "parley/node/config.h"
#include "parley/node/node.h"
#include "parley/store/database.h"
#include "parley/store/node_schema.h"

namespace parley::node {

namespace fs = std::filesystem;
namespace http = web::http;
using Level = CheckResult::Level;

const char* to_string(CheckResult::Level level) {
  switch (level) {
    case Level::kOk:
      return "ok";
    case Level::kWarning:
      return "warning";
    case Level::kProblem:
      return "problem";
  }
  return "problem";
}

namespace {

constexpr std::int64_t kDay = 24 * 3600;

std::string octal_mode(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

class Checker {
 public:
  Checker(const std::string& data_dir, const CheckOptions& o,
          const std::function<void(const CheckResult&)>& progress)
      : paths_{data_dir}, options_(o), progress_(progress) {}

  std::vector<CheckResult> run() {
    if (!data_directory()) return std::move(results_);
    const bool config_ok = configuration();
    files();
    database();
    if (!config_ok) return std::move(results_);
    node_key();
    listeners();
    tls();
    if (options_.network && federates()) {
      well_known();
      peers();
    }
    return std::move(results_);
  }

 private:
  void report(const std::string& check, Level level, std::string detail, std::string hint = {}) {
    results_.push_back({check, level, std::move(detail), std::move(hint)});
    if (progress_) progress_(results_.back());
  }

  bool data_directory() {
    struct stat st {};
    if (::stat(paths_.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
        ::access(paths_.config().c_str(), F_OK) != 0) {
      report("data-dir", Level::kProblem, paths_.dir + " is not a Parley data directory",
             "create a node with `parleyd init --data " + paths_.dir + " --name NAME`");
      return false;
    }
    if (st.st_mode & 022) {
      report("data-dir", Level::kProblem,
             paths_.dir + " is writable by others (mode " + octal_mode(st.st_mode) + ")",
             "chmod 700 " + paths_.dir);
    } else if (st.st_uid != ::geteuid()) {
      report("data-dir", Level::kWarning,
             paths_.dir + " belongs to uid " + std::to_string(st.st_uid) + ", not to this user (" +
                 std::to_string(::geteuid()) + ")",
             "run parleyd as the directory's owner (the systemd unit's User=)");
    }
    struct statvfs vfs {};
    if (::statvfs(paths_.dir.c_str(), &vfs) == 0) {
      const double free_mib =
          static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize) / (1024.0 * 1024.0);
      if (vfs.f_flag & ST_RDONLY) {
        report("data-dir", Level::kProblem, paths_.dir + " is on a read-only file system",
               "remount it read-write; the node writes its database there");
        return true;
      }
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.0f MiB free", free_mib);
      if (free_mib < 1024) {
        report("data-dir", Level::kWarning, paths_.dir + ": only " + buf,
               "free space or move the data directory; at a full disk the node refuses new "
               "messages (storage.md)");
      } else {
        report("data-dir", Level::kOk, paths_.dir + ": writable, " + buf);
      }
    }
    return true;
  }

  bool configuration() {
    auto c = load_config(paths_.config());
    if (!c.ok()) {
      report("config", Level::kProblem, paths_.config() + ": " + c.error().message,
             "fix the key named above (`parleyd init` writes a commented template of every key)");
      return false;
    }
    config_ = *c;
    report("config", Level::kOk,
           paths_.config() + " is valid: node " + config_.name + ", federation policy " +
               config_.federation_policy + ", 1:1 policy " + to_string(config_.direct_messages));
    if (config_.federation_allow_plaintext) {
      report("config", Level::kWarning,
             "federation.allow_plaintext_http = true: peers may be reached over plain HTTP",
             "meant for loopback tests; set it to false and give the listener a TLS certificate");
    }
    if (!config_.test_fault_file.empty()) {
      report("config", Level::kWarning,
             "storage.test_fault_file is set: the database runs through fault injection",
             "remove storage.test_fault_file (tests and benchmarks only)");
    }
    return true;
  }

  // Secrets readable only by the owner; the config not writable by others.
  void files() {
    struct Wanted {
      std::string path;
      mode_t forbidden;
      bool required;
    };
    const Wanted wanted[] = {{paths_.node_key(), 077, true},
                             {paths_.admin_token(), 077, true},
                             {paths_.database(), 077, true},
                             {paths_.config(), 022, true}};
    bool all_ok = true;
    for (const auto& w : wanted) {
      struct stat st {};
      if (::stat(w.path.c_str(), &st) != 0) {
        all_ok = false;
        report("files", Level::kProblem, w.path + " is missing",
               "restore it from a backup (`parleyd backup`), or create a new node with "
               "`parleyd init`");
        continue;
      }
      if (st.st_mode & w.forbidden) {
        all_ok = false;
        const bool secret = w.forbidden == 077;
        report("files", Level::kProblem,
               w.path + " is " +
                   (secret ? "readable or writable by others" : "writable by others") + " (mode " +
                   octal_mode(st.st_mode) + ")",
               std::string("chmod ") + (secret ? "600 " : "644 ") + w.path);
      }
    }
    if (all_ok) {
      report("files", Level::kOk, "node.key, admin.token, parley.db: owner only; config.toml ok");
    }
  }

  void database() {
    if (::access(paths_.database().c_str(), F_OK) != 0) return;  // reported by files()
    store::Database::Options o;
    o.read_only = true;
    o.create = false;
    auto db = store::Database::open(paths_.database(), o);
    if (!db.ok()) {
      report("database", Level::kProblem, db.error().message,
             "restore the database from a backup (`parleyd backup`)");
      return;
    }
    db_ = std::move(*db);
    auto version = db_->schema_version();
    const int highest = store::node_migrations().back().version;
    if (!version.ok()) {
      report("database", Level::kProblem, version.error().message, "restore it from a backup");
      return;
    }
    if (*version > highest) {
      report("database", Level::kProblem,
             "schema version " + std::to_string(*version) + " is newer than this parleyd (" +
                 std::to_string(highest) + ")",
             "run the parleyd that wrote it, or a newer one");
      return;
    }
    auto check = db_->prepare("PRAGMA quick_check");
    std::string verdict = "unknown";
    if (check.ok()) {
      auto row = check->step();
      if (row.ok() && *row) verdict = check->column_text(0);
    }
    if (verdict != "ok") {
      report("database", Level::kProblem, paths_.database() + ": quick_check says " + verdict,
             "stop the node and restore the last good backup");
      return;
    }
    std::string detail = paths_.database() + ": intact, schema " + std::to_string(*version) + ", " +
                         std::to_string(db_->size_bytes() / (1024 * 1024)) + " MiB";
    if (*version < highest) {
      report("database", Level::kWarning,
             detail + "; the next start migrates it to " + std::to_string(highest),
             "take a backup before starting the new version");
      return;
    }
    report("database", Level::kOk, detail);
  }

  void node_key() {
    auto key = crypto::load_signing_key(paths_.node_key());
    if (!key.ok()) {
      const bool loose = key.error().message.find("chmod") != std::string::npos;
      report("node-key", Level::kProblem, key.error().message,
             loose ? "chmod 600 " + paths_.node_key()
                   : "restore node.key from a backup; a new key (`parleyd key rotate`) needs "
                     "the old one");
      return;
    }
    if (!db_) return;
    auto st = db_->prepare("SELECT public_key FROM node_keys WHERE until_ms = 0");
    if (!st.ok()) return;
    auto row = st->step();
    if (!row.ok() || !*row) {
      report("node-key", Level::kOk,
             "node.key loads; the database records it at the next start (" +
                 crypto::format_public_key(key->public_key()) + ")");
      return;
    }
    if (st->column_text(0) != key->public_key()) {
      report("node-key", Level::kWarning,
             "node.key is not the key the database lists as current (an interrupted "
             "`parleyd key rotate`?)",
             "start the node once: it reconciles the key history; check `parleyd key show`");
      return;
    }
    report("node-key", Level::kOk, crypto::format_public_key(key->public_key()));
  }

  // Another parleyd holds the data directory's lock: its listeners are expected to be in use.
  bool node_running() const {
    const int fd = ::open(paths_.lock().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);
    return held;
  }

  // 0 if `hp` can be bound (or connected, with `connect`), else errno.
  static int try_address(const HostPort& hp, bool connect) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(hp.port);
    if (::getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &found) != 0 || !found) {
      return EADDRNOTAVAIL;
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> hold(found, ::freeaddrinfo);
    const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    int err = 0;
    if (connect) {
      if (::connect(fd, found->ai_addr, found->ai_addrlen) != 0) err = errno;
    } else {
      const int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0) err = errno;
    }
    ::close(fd);
    return err;
  }

  void listeners() {
    const bool running = node_running();
    const std::pair<const char*, HostPort> all[] = {
        {"client.listen", config_.client_listen},
        {"federation.listen", config_.federation_listen},
        {"admin.listen", config_.admin_listen}};
    for (const auto& [key, hp] : all) {
      if (hp.port == config_.federation_listen.port && hp.host == config_.federation_listen.host &&
          !federates()) {
        continue;  // not started: reported by tls()
      }
      const int err = try_address(hp, running);
      const std::string what = std::string(key) + " " + hp.str();
      if (err == 0) {
        report("listeners", Level::kOk,
               what + (running ? ": the running node answers" : ": free to listen on"));
      } else if (running) {
        report("listeners", Level::kProblem,
               what + ": the running node does not answer (" + std::strerror(err) + ")",
               "look at the node's log (journalctl -u parleyd)");
      } else if (err == EADDRINUSE) {
        report("listeners", Level::kProblem, what + ": already in use by another process",
               "find it with `ss -ltnp 'sport = :" + std::to_string(hp.port) +
                   "'`, or choose another port in config.toml");
      } else if (err == EACCES) {
        report("listeners", Level::kProblem, what + ": a privileged port",
               "use a port >= 1024, or grant CAP_NET_BIND_SERVICE (AmbientCapabilities= in the "
               "systemd unit)");
      } else {
        report("listeners", Level::kProblem, what + ": " + std::strerror(err),
               "use an address of this machine (ip -brief address)");
      }
    }
  }

  // The federation listener starts with a TLS certificate, or over plain HTTP when allowed.
  bool federates() const {
    return !config_.federation_tls_cert.empty() || config_.federation_allow_plaintext;
  }

  void tls() {
    if (!federates()) {
      report("tls", Level::kWarning,
             "federation is off: the listener starts only with a TLS certificate "
             "(federation.tls_cert), so users here cannot reach other organizations",
             "set federation.tls_cert and federation.tls_key (PEM, naming " + config_.name +
                 ") to federate");
      return;
    }
    if (config_.federation_tls_cert.empty()) {
      report("tls", Level::kWarning,
             "the federation listener speaks plain HTTP (federation.allow_plaintext_http)",
             "for loopback tests only: set federation.tls_cert and federation.tls_key");
      return;
    }
    std::unique_ptr<std::FILE, decltype(&std::fclose)> f(
        std::fopen(config_.federation_tls_cert.c_str(), "r"), std::fclose);
    if (!f) {
      report("tls", Level::kProblem,
             "cannot read " + config_.federation_tls_cert + ": " + std::strerror(errno),
             "check federation.tls_cert and the file's owner");
      return;
    }
    std::unique_ptr<X509, decltype(&X509_free)> cert(
        PEM_read_X509(f.get(), nullptr, nullptr, nullptr), X509_free);
    if (!cert) {
      report("tls", Level::kProblem, config_.federation_tls_cert + " holds no PEM certificate",
             "federation.tls_cert must be the PEM certificate chain, leaf first");
      return;
    }
    int days = 0, secs = 0;
    if (X509_cmp_time(X509_get0_notBefore(cert.get()), nullptr) > 0) {
      report("tls", Level::kProblem, config_.federation_tls_cert + " is not valid yet",
             "check the machine's clock, or the certificate's notBefore");
    } else if (X509_cmp_time(X509_get0_notAfter(cert.get()), nullptr) < 0) {
      report("tls", Level::kProblem, config_.federation_tls_cert + " has expired",
             "renew the certificate; peers refuse this node until then");
    } else if (ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(cert.get())) && days < 21) {
      report("tls", Level::kWarning,
             config_.federation_tls_cert + " expires in " + std::to_string(days) + " days",
             "renew it soon (then `systemctl reload parleyd` or a restart)");
    } else {
      report("tls", Level::kOk,
             config_.federation_tls_cert + " is valid for " + std::to_string(days) + " more days");
    }
    if (X509_check_host(cert.get(), config_.name.c_str(), config_.name.size(), 0, nullptr) != 1) {
      report("tls", Level::kProblem, config_.federation_tls_cert + " does not name " + config_.name,
             "peers check the certificate against the node's name: get one whose subjectAltName "
             "includes " +
                 config_.name);
    }
    std::unique_ptr<std::FILE, decltype(&std::fclose)> k(
        std::fopen(config_.federation_tls_key.c_str(), "r"), std::fclose);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        k ? PEM_read_PrivateKey(k.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free);
    if (!key) {
      report("tls", Level::kProblem,
             "cannot read a PEM private key from " + config_.federation_tls_key,
             "federation.tls_key must be the certificate's unencrypted PEM key");
    } else if (X509_check_private_key(cert.get(), key.get()) != 1) {
      report("tls", Level::kProblem,
             config_.federation_tls_key + " is not the key of " + config_.federation_tls_cert,
             "install the key that belongs to the certificate");
    }
  }

  http::client::http_client_config client_config() const {
    http::client::http_client_config cc;
    cc.set_timeout(std::chrono::seconds(options_.timeout_seconds));
    cc.set_validate_certificates(true);
    if (!config_.federation_tls_ca.empty()) {
      const std::string ca = config_.federation_tls_ca;
      cc.set_ssl_context_callback([ca](boost::asio::ssl::context& ctx) {
        ctx.set_default_verify_paths();
        ctx.load_verify_file(ca);
      });
    }
    return cc;
  }

  // GET url; the body, or an error message.
  Result<std::string> get(const std::string& base, const std::string& path) const {
    try {
      http::client::http_client client(base, client_config());
      const auto resp = client.request(http::methods::GET, path).get();
      const auto bytes = resp.extract_vector().get();
      if (resp.status_code() != http::status_codes::OK) {
        return make_error("unreachable", "HTTP " + std::to_string(resp.status_code()));
      }
      return std::string(bytes.begin(), bytes.end());
    } catch (const std::exception& e) {
      return make_error("unreachable", e.what());
    }
  }

  // Peers find this node through federation.discovery_url with {name} = this node's name; it
  // must name the URL this node advertises.
  void well_known() {
    std::string where = config_.federation_discovery_url;
    for (auto at = where.find("{name}"); at != std::string::npos; at = where.find("{name}")) {
      where.replace(at, 6, config_.name);
    }
    const std::string expected = federation_public_url(config_);
    const auto scheme_end = where.find("://");
    const auto path_at =
        scheme_end == std::string::npos ? std::string::npos : where.find('/', scheme_end + 3);
    const std::string base = path_at == std::string::npos ? where : where.substr(0, path_at);
    const std::string path = path_at == std::string::npos ? "/" : where.substr(path_at);
    auto body = get(base, path);
    const std::string hint = "serve {\"federation_url\": \"" + expected + "\"} at " + where +
                             " (a reverse proxy to the federation listener, which serves "
                             "/.well-known/parley itself)";
    if (!body.ok()) {
      report("well-known", Level::kProblem, where + ": " + body.error().message, hint);
      return;
    }
    try {
      const auto doc = web::json::value::parse(*body);
      const std::string url = doc.at("federation_url").as_string();
      if (url != expected) {
        report("well-known", Level::kProblem,
               where + " names " + url + ", but this node advertises " + expected,
               "make them agree: federation.public_url, or the document served at " + where);
        return;
      }
      report("well-known", Level::kOk, where + " names " + url);
    } catch (const std::exception&) {
      report("well-known", Level::kProblem, where + " is not a JSON discovery document", hint);
    }
  }

  void peers() {
    if (!db_) return;
    auto list = federation::PeerStore(*db_).list();
    if (!list.ok()) {
      report("peers", Level::kProblem, list.error().message, "");
      return;
    }
    int checked = 0;
    for (const auto& p : *list) {
      // Nodes this node does not federate with are not contacted by the check either.
      if (p.state == "denied" || p.url.empty()) continue;
      if (config_.federation_policy == "allowlist" && !p.listed) continue;
      ++checked;
      auto body = get(p.url, "/federation/v1/key");
      if (!body.ok()) {
        report("peers", Level::kProblem, p.name + " at " + p.url + ": " + body.error().message,
               "is the peer up and reachable from here (firewall, DNS, TLS trust: "
               "federation.tls_ca)? `parleyd peer status " +
                   p.name + "` shows its queue");
        continue;
      }
      auto doc = federation::parse_key_document(*body, p.name);
      if (!doc.ok()) {
        report("peers", Level::kProblem, p.name + " at " + p.url + ": " + doc.error().message,
               "the URL may point at another service; check `parleyd peer list`");
        continue;
      }
      if (!p.public_key.empty() && !doc->continues_from(p.public_key).ok()) {
        const auto* now_key = doc->current();
        report("peers", Level::kProblem,
               p.name + " presents key " +
                   (now_key ? crypto::format_public_key(now_key->public_key) : "(none)") +
                   ", which does not continue from the pinned " +
                   crypto::format_public_key(p.public_key),
               "ask its admin whether the key was rotated; re-pin with `parleyd peer add " +
                   p.name + " URL --key KEY`");
        continue;
      }
      report("peers", Level::kOk, p.name + " at " + p.url + " answers with its key");
    }
    if (checked == 0) report("peers", Level::kOk, "no static or discovered peers to reach");
  }

  DataPaths paths_;
  CheckOptions options_;
  const std::function<void(const CheckResult&)>& progress_;
  NodeConfig config_;
  std::unique_ptr<store::Database> db_;
  std::vector<CheckResult> results_;
};

}  // namespace

std::vector<CheckResult> check_node(const std::string& data_dir, const CheckOptions& options,
                                    const std::function<void(const CheckResult&)>& progress) {
  return Checker(data_dir, options, progress).run();
}

}  // namespace parley::node
