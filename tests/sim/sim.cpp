// Deterministic simulator for replicated conversations (issue 5, spec/ordering.md): 3-7 nodes in
// one process, one Replica per node, a seeded random network that delays (reorders), duplicates
// and drops messages, one-way and two-way partitions, crashes that lose what was not committed
// and restarts from the committed log. A random workload sends, edits, recalls, reacts, reads and
// changes membership (conflicting changes across partitions included). After healing, every node
// that hosts a member must hold the same events in the same total order with the same state hash,
// equal to a naive reference model computed from every event ever created.
//
// Usage: parley_sim [FIRST_SEED] [COUNT] [--verbose]     exit 0 when every seed converges.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "parley/conv/replica.h"
#include "parley/crypto/secret.h"

using namespace parley;
using conv::Clock;
using conv::Event;
using conv::Kind;
using conv::Replica;

namespace {

// ---- the naive reference model ----------------------------------------------------------------

// Decides validity of every event from scratch (pairwise causal checks, full rescans) and folds
// the state, without any of the replica's indexes.
struct Model {
  std::vector<Event> ordered;  // all events, total order
  std::vector<bool> valid;
  std::string order_problem;  // set when the order is not a linear extension of causality

  // The model's own causality and order (not the replica's helpers): a happened before b iff
  // b's clock covers a's sequence number; ordered by clock sum, then origin, then seq.
  static std::string actor(const Event& e) { return e.origin + "#" + std::to_string(e.epoch); }
  static bool before(const Event& a, const Event& b) {
    if (actor(a) == actor(b) && a.seq == b.seq) return false;
    auto it = b.clock.find(actor(a));
    return it != b.clock.end() && it->second >= a.seq;
  }
  static std::tuple<std::uint64_t, std::string, std::uint64_t> key(const Event& e) {
    std::uint64_t sum = 0;
    for (const auto& [node, n] : e.clock) sum += n;
    return {sum, actor(e), e.seq};
  }

  static int rank(const std::string& r) { return r == "admin" ? 1 : 0; }

  // What a membership event says about `user`: nullopt (nothing), "" (out) or a role.
  static std::optional<std::string> says(const Event& e, const std::string& user) {
    switch (e.kind) {
      case Kind::kCreate: {
        if (e.author == user) return "admin";
        std::string line;
        for (char c : e.body + "\n") {
          if (c == '\n') {
            if (line == user) return "member";
            line.clear();
          } else {
            line += c;
          }
        }
        return std::nullopt;
      }
      case Kind::kAdd:
      case Kind::kRole:
        return e.target == user ? std::optional<std::string>(e.role) : std::nullopt;
      case Kind::kRemove:
        return e.target == user ? std::optional<std::string>("") : std::nullopt;
      case Kind::kLeave:
        return e.author == user ? std::optional<std::string>("") : std::nullopt;
      default:
        return std::nullopt;
    }
  }

  // Role of `user` given the valid events among `indexes` (remove wins, lower role wins).
  std::optional<std::string> role_of(const std::string& user,
                                     const std::vector<std::size_t>& in) const {
    std::vector<std::pair<std::size_t, std::string>> about;
    for (auto i : in) {
      if (!valid[i]) continue;
      if (auto s = says(ordered[i], user)) about.emplace_back(i, *s);
    }
    std::optional<std::string> role;
    bool out = false;
    for (const auto& [i, s] : about) {
      bool later_exists = false;
      for (const auto& [j, unused] : about) {
        if (before(ordered[i], ordered[j])) later_exists = true;
      }
      if (later_exists) continue;
      if (s.empty())
        out = true;
      else if (!role || rank(s) < rank(*role))
        role = s;
    }
    if (out) return std::nullopt;
    return role;
  }

  explicit Model(std::vector<Event> events) : ordered(std::move(events)) {
    std::sort(ordered.begin(), ordered.end(),
              [](const Event& a, const Event& b) { return key(a) < key(b); });
    for (std::size_t i = 0; i < ordered.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (before(ordered[i], ordered[j])) order_problem = "total order breaks causality";
      }
    }
    valid.assign(ordered.size(), false);
    for (std::size_t i = 0; i < ordered.size(); ++i) {
      const Event& e = ordered[i];
      std::vector<std::size_t> past;
      for (std::size_t j = 0; j < i; ++j) {
        if (before(ordered[j], e)) past.push_back(j);
      }
      valid[i] = decide(e, past);
    }
  }

  const Event* find(const std::string& id, const std::vector<std::size_t>& past,
                    std::size_t* at) const {
    for (auto j : past) {
      if (ordered[j].id() == id) {
        if (at) *at = j;
        return &ordered[j];
      }
    }
    return nullptr;
  }

  bool decide(const Event& e, const std::vector<std::size_t>& past) const {
    const auto at = e.author.rfind('@');
    if (at == std::string::npos || e.author.substr(at + 1) != e.origin) return false;
    if (e.kind == Kind::kCreate) return e.seq == 1 && e.clock.size() == 1 && past.empty();
    bool created = false;
    for (auto j : past) created |= valid[j] && ordered[j].kind == Kind::kCreate;
    if (!created) return false;
    const auto author = role_of(e.author, past);
    std::size_t ti = 0;
    const Event* target = find(e.target, past, &ti);
    const bool target_msg = target && valid[ti] && target->kind == Kind::kMessage;
    switch (e.kind) {
      case Kind::kMessage:
        return author.has_value();
      case Kind::kEdit:
        return author && target_msg && target->author == e.author;
      case Kind::kRecall:
        return author && target_msg && (*author == "admin" || target->author == e.author);
      case Kind::kReaction:
        return author && target_msg && !e.body.empty();
      case Kind::kRead:
        return author && target;
      case Kind::kAdd:
        return author && *author == "admin" && (e.role == "member" || e.role == "admin") &&
               e.target.find('@') != std::string::npos;
      case Kind::kRemove:
        return author && *author == "admin" && role_of(e.target, past);
      case Kind::kLeave:
        return author && e.target == e.author;
      case Kind::kRole:
        return author && *author == "admin" && (e.role == "member" || e.role == "admin") &&
               role_of(e.target, past);
      default:
        return false;
    }
  }

  conv::State state() const {
    conv::State s;
    std::vector<std::size_t> all(ordered.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    std::set<std::string> users;
    for (std::size_t i = 0; i < ordered.size(); ++i) {
      const Event& e = ordered[i];
      users.insert(e.author);
      if (!e.target.empty()) users.insert(e.target);
      std::string line;
      if (e.kind == Kind::kCreate) {
        for (char c : e.body + "\n") {
          if (c == '\n') {
            if (!line.empty()) users.insert(line);
            line.clear();
          } else
            line += c;
        }
      }
    }
    for (const auto& u : users) {
      if (auto r = role_of(u, all)) s.members[u] = conv::Member{*r};
    }
    for (std::size_t i = 0; i < ordered.size(); ++i) {
      if (!valid[i] || ordered[i].kind != Kind::kMessage) continue;
      const Event& m = ordered[i];
      conv::MessageView v{m.id(), m.author, m.body, false, false, m.wall_ms};
      for (std::size_t j = 0; j < ordered.size(); ++j) {
        if (!valid[j] || ordered[j].target != v.id) continue;
        if (ordered[j].kind == Kind::kRecall) v.recalled = true;
      }
      for (std::size_t j = 0; j < ordered.size() && !v.recalled; ++j) {
        if (valid[j] && ordered[j].kind == Kind::kEdit && ordered[j].target == v.id) {
          v.body = ordered[j].body;  // the last edit in the total order wins
          v.edited = true;
        }
      }
      if (v.recalled) v.body.clear();
      s.messages.push_back(v);
    }
    std::map<std::string, std::size_t> read_pos;
    for (std::size_t i = 0; i < ordered.size(); ++i) {
      const Event& e = ordered[i];
      if (!valid[i]) continue;
      if (e.kind == Kind::kReaction) s.reactions.emplace(e.target, e.author, e.body);
      if (e.kind == Kind::kRead) {
        std::size_t pos = 0;
        for (std::size_t j = 0; j < ordered.size(); ++j) {
          if (ordered[j].id() == e.target) pos = j;
        }
        auto it = read_pos.find(e.author);
        if (it == read_pos.end() || it->second < pos) {
          read_pos[e.author] = pos;
          s.read_upto[e.author] = e.target;
        }
      }
    }
    return s;
  }
};

// ---- the simulated world ----------------------------------------------------------------------

struct Packet {
  enum Type { kEvent, kPull, kPage } type = kEvent;
  int from = 0, to = 0;
  std::uint64_t at = 0;  // tick it is delivered
  std::vector<Event> events;
  Clock clock;
};

struct Node {
  std::string name;
  std::vector<std::string> users;
  std::unique_ptr<Replica> replica;
  std::size_t committed = 0;  // log entries on "disk"
  std::size_t own_upto = 0;   // log entries up to the last event this node created
  bool up = true;
  std::uint64_t restart_at = 0;
  std::uint64_t epoch = 0;
};

class World {
 public:
  World(std::uint64_t seed, bool verbose) : rng_(seed), seed_(seed), verbose_(verbose) {
    const int n = 3 + static_cast<int>(rng_() % 5);
    for (int i = 0; i < n; ++i) {
      Node node;
      node.name = "n" + std::to_string(i) + ".example";
      for (int u = 0; u < 2; ++u) node.users.push_back("u" + std::to_string(u) + "@" + node.name);
      node.replica = std::make_unique<Replica>("g:sim", node.name);
      nodes_.push_back(std::move(node));
    }
    blocked_.assign(n, std::vector<bool>(n, false));
    // Node 0's first user creates the group with some users of every node.
    std::string members;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      for (const auto& u : nodes_[i].users) {
        if (u != nodes_[0].users[0] && chance(0.6)) members += u + "\n";
      }
    }
    act(0, Kind::kCreate, nodes_[0].users[0], "", "", members);
  }

  bool chance(double p) { return std::uniform_real_distribution<>(0, 1)(rng_) < p; }
  std::size_t pick(std::size_t n) { return rng_() % n; }

  void log(const std::string& line) {
    oplog_.push_back("t" + std::to_string(tick_) + " " + line);
    if (verbose_) std::printf("%s\n", oplog_.back().c_str());
  }

  // A node's user acts; the event is committed, then sent to the nodes of the members it knows.
  void act(std::size_t i, Kind kind, const std::string& author, const std::string& target,
           const std::string& role, const std::string& body) {
    Node& n = nodes_[i];
    auto e = n.replica->create(kind, author, target, role, body, static_cast<std::int64_t>(tick_));
    if (!e.ok()) return;
    created_[e->id()] = *e;
    n.committed = n.own_upto = n.replica->log().size();
    log(n.name + " " + conv::to_string(kind) + " by " + author +
        (target.empty() ? "" : " on " + target.substr(0, 12)) + " seq " + std::to_string(e->seq));
    std::set<std::string> to = n.replica->state().nodes();
    if (kind == Kind::kRemove) to.insert(target.substr(target.rfind('@') + 1));
    for (std::size_t j = 0; j < nodes_.size(); ++j) {
      if (j != i && to.count(nodes_[j].name)) send({Packet::kEvent, (int)i, (int)j, 0, {*e}, {}});
    }
  }

  void send(Packet p) {
    if (faults_ && chance(0.05)) return;  // dropped
    p.at = tick_ + 1 + (faults_ ? pick(12) : pick(2));
    if (faults_ && chance(0.05)) {
      Packet copy = p;
      copy.at += pick(20);
      network_.push_back(copy);
    }
    network_.push_back(std::move(p));
  }

  void deliver(const Packet& p) {
    Node& n = nodes_[p.to];
    if (!n.up || blocked_[p.from][p.to]) return;
    Replica& r = *n.replica;
    switch (p.type) {
      case Packet::kEvent:
      case Packet::kPage: {
        bool gap = false;
        for (const auto& e : p.events) {
          const auto outcome = r.receive(e);
          gap |= outcome == Replica::Outcome::kBuffered;
        }
        n.committed = r.log().size();
        // Missing causal predecessors: ask the sender for what we lack.
        if (gap || (p.type == Packet::kPage && p.events.size() == kPage)) {
          send({Packet::kPull, p.to, p.from, 0, {}, r.clock()});
        }
        break;
      }
      case Packet::kPull: {
        // Only nodes hosting a member get the conversation.
        if (!r.state().nodes().count(nodes_[p.from].name)) break;
        auto page = r.missing_for(p.clock, kPage);
        if (!page.empty()) send({Packet::kPage, p.to, p.from, 0, std::move(page), {}});
        break;
      }
    }
  }

  // A crash loses what was applied after the node's last own event (own events are committed
  // before they are sent). With `from_backup` the node comes back from an older copy instead,
  // own events included, under a new epoch so it never reuses a sequence number.
  void crash(std::size_t i, bool from_backup) {
    Node& n = nodes_[i];
    n.up = false;
    n.restart_at = tick_ + 5 + pick(30);
    std::size_t keep =
        std::max(n.own_upto,
                 n.committed - (n.committed > n.own_upto ? pick(n.committed - n.own_upto + 1) : 0));
    if (from_backup) {
      keep = pick(n.committed + 1);
      // Every epoch of this node so far is retired; what the backup kept of each may be less
      // than what an earlier restore kept.
      for (std::uint64_t epoch = 0; epoch <= n.epoch; ++epoch) {
        const std::string actor = n.name + "#" + std::to_string(epoch);
        std::uint64_t kept_seq = 0;
        for (std::size_t k = 0; k < keep; ++k) {
          const Event& e = n.replica->log()[k];
          if (e.actor() == actor) kept_seq = std::max(kept_seq, e.seq);
        }
        auto [it, fresh] = retired_.emplace(actor, kept_seq);
        if (!fresh) it->second = std::min(it->second, kept_seq);
      }
      ++n.epoch;
    }
    std::vector<Event> disk(n.replica->log().begin(), n.replica->log().begin() + keep);
    n.replica = std::make_unique<Replica>("g:sim", n.name, n.epoch);
    for (const auto& e : disk) n.replica->receive(e);
    n.committed = keep;
    n.own_upto = from_backup ? 0 : std::min(n.own_upto, keep);
    log(n.name + (from_backup ? " restored from a backup (" : " crashed (") + std::to_string(keep) +
        " events kept, epoch " + std::to_string(n.epoch) + ")");
  }

  void random_op() {
    const std::size_t i = pick(nodes_.size());
    Node& n = nodes_[i];
    if (!n.up) return;
    const std::string user = n.users[pick(n.users.size())];
    const auto st = n.replica->state();
    std::vector<std::string> members;
    for (const auto& [m, unused] : st.members) members.push_back(m);
    std::vector<std::string> all_users;
    for (const auto& node : nodes_)
      for (const auto& u : node.users) all_users.push_back(u);
    std::vector<const conv::MessageView*> mine, any;
    for (const auto& m : st.messages) {
      if (m.recalled) continue;
      any.push_back(&m);
      if (m.author == user) mine.push_back(&m);
    }
    const int r = static_cast<int>(pick(100));
    if (r < 45) {
      act(i, Kind::kMessage, user, "", "", "hello " + std::to_string(tick_));
    } else if (r < 52 && !mine.empty()) {
      act(i, Kind::kEdit, user, mine[pick(mine.size())]->id, "", "edited " + std::to_string(tick_));
    } else if (r < 57 && !any.empty()) {
      act(i, Kind::kRecall, user, any[pick(any.size())]->id, "", "");
    } else if (r < 64 && !any.empty()) {
      act(i, Kind::kReaction, user, any[pick(any.size())]->id, "", chance(0.5) ? "+1" : "<3");
    } else if (r < 74 && !n.replica->log().empty()) {
      act(i, Kind::kRead, user, n.replica->log()[pick(n.replica->log().size())].id(), "", "");
    } else if (r < 84) {
      act(i, Kind::kAdd, user, all_users[pick(all_users.size())], chance(0.3) ? "admin" : "member",
          "");
    } else if (r < 92 && !members.empty()) {
      act(i, Kind::kRemove, user, members[pick(members.size())], "", "");
    } else if (r < 95) {
      act(i, Kind::kLeave, user, user, "", "");
    } else if (!members.empty()) {
      act(i, Kind::kRole, user, members[pick(members.size())], chance(0.5) ? "admin" : "member",
          "");
    }
  }

  void step() {
    ++tick_;
    std::vector<Packet> due;
    for (auto it = network_.begin(); it != network_.end();) {
      if (it->at <= tick_) {
        due.push_back(std::move(*it));
        it = network_.erase(it);
      } else {
        ++it;
      }
    }
    std::shuffle(due.begin(), due.end(), rng_);
    for (const auto& p : due) deliver(p);
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      Node& n = nodes_[i];
      if (!n.up && tick_ >= n.restart_at) {
        n.up = true;
        log(n.name + " restarted");
      }
      // Anti-entropy: now and then offer our clock to a node of the conversation.
      if (n.up && chance(0.08)) {
        std::vector<std::size_t> peers;
        const auto where = n.replica->state().nodes();
        for (std::size_t j = 0; j < nodes_.size(); ++j) {
          if (j != i && (where.count(nodes_[j].name) || where.empty())) peers.push_back(j);
        }
        if (peers.empty())
          for (std::size_t j = 0; j < nodes_.size(); ++j)
            if (j != i) peers.push_back(j);
        send({Packet::kPull, (int)i, (int)peers[pick(peers.size())], 0, {}, n.replica->clock()});
      }
    }
  }

  void run_faulty(int ticks) {
    faults_ = true;
    for (int t = 0; t < ticks; ++t) {
      if (chance(0.35)) random_op();
      if (chance(0.02)) {  // partitions come and go, one-way or both ways
        const std::size_t a = pick(nodes_.size()), b = pick(nodes_.size());
        if (a != b) {
          const bool on = !blocked_[a][b];
          blocked_[a][b] = on;
          if (chance(0.5)) blocked_[b][a] = on;
          log("partition " + nodes_[a].name + " -> " + nodes_[b].name + (on ? " on" : " off"));
        }
      }
      if (chance(0.01)) {
        const std::size_t i = pick(nodes_.size());
        if (nodes_[i].up) crash(i, chance(0.25));
      }
      step();
    }
  }

  // Heals everything and lets anti-entropy run until nothing moves.
  void heal() {
    faults_ = false;
    for (auto& row : blocked_) std::fill(row.begin(), row.end(), false);
    for (auto& n : nodes_) n.up = true;
    log("healed");
    for (int round = 0; round < 4000; ++round) {
      step();
      // Everyone pulls from everyone now and then until the network is quiet.
      if (round % 10 == 0) {
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
          for (std::size_t j = 0; j < nodes_.size(); ++j) {
            if (i != j) send({Packet::kPull, (int)i, (int)j, 0, {}, nodes_[i].replica->clock()});
          }
        }
      }
      if (round > 200 && network_.empty()) break;
    }
  }

  // Returns an empty string when the run converged, otherwise what differs.
  std::string check() {
    // Every event ever created, except those a restore from backup lost before any other node
    // had them (events of a retired epoch above what the backup kept, held by nobody now).
    std::set<std::string> held;
    for (const auto& n : nodes_) {
      for (const auto& e : n.replica->log()) held.insert(e.id());
    }
    std::vector<Event> all;
    for (const auto& [id, e] : created_) {
      const auto r = retired_.find(e.actor());
      if (r != retired_.end() && e.seq > r->second && !held.count(id)) continue;
      all.push_back(e);
    }
    Model model(all);
    std::vector<std::string> model_ids;
    for (const auto& e : model.ordered) model_ids.push_back(e.id());
    const conv::State want = model.state();
    const std::string want_hash = want.hash();
    std::string problems = model.order_problem.empty() ? "" : model.order_problem + "\n";
    for (const auto& n : nodes_) {
      if (!want.nodes().count(n.name)) continue;  // hosts no member any more: not replicated
      std::vector<std::string> ids;
      for (const Event* e : n.replica->ordered()) ids.push_back(e->id());
      if (ids != model_ids) {
        problems += n.name + ": " + std::to_string(ids.size()) + " events, model has " +
                    std::to_string(model_ids.size()) + " (or another order)\n";
        const std::set<std::string> have(ids.begin(), ids.end());
        for (const auto& e : model.ordered) {
          if (!have.count(e.id())) {
            problems += "  missing " + e.actor() + " seq " + std::to_string(e.seq) + " " +
                        conv::to_string(e.kind) + ", held by:";
            for (const auto& other : nodes_) {
              for (const auto& x : other.replica->log()) {
                if (x.id() == e.id()) problems += " " + other.name;
              }
            }
            problems += "; its clock:";
            for (const auto& [a, v] : e.clock) problems += " " + a + "=" + std::to_string(v);
            problems += "; " + n.name + " has:";
            for (const auto& [a, v] : n.replica->clock())
              problems += " " + a + "=" + std::to_string(v);
            problems += "\n";
          }
        }
        continue;
      }
      for (std::size_t k = 0; k < model.ordered.size(); ++k) {
        if (n.replica->valid(model_ids[k]) != model.valid[k]) {
          problems += n.name + ": validity of " + conv::to_string(model.ordered[k].kind) + " " +
                      model_ids[k].substr(0, 12) + " differs from the model\n";
        }
      }
      if (n.replica->state().hash() != want_hash) problems += n.name + ": state hash differs\n";
      if (!n.replica->equivocations().empty()) problems += n.name + ": equivocation recorded\n";
    }
    if (want.nodes().empty()) problems += "no node hosts a member at the end (degenerate run)\n";
    return problems;
  }

  std::size_t events() const { return created_.size(); }
  const std::vector<std::string>& oplog() const { return oplog_; }

  static constexpr std::size_t kPage = 50;

 private:
  std::mt19937_64 rng_;
  std::uint64_t seed_;
  bool verbose_;
  bool faults_ = true;
  std::uint64_t tick_ = 0;
  std::vector<Node> nodes_;
  std::vector<std::vector<bool>> blocked_;
  std::vector<Packet> network_;
  std::map<std::string, Event> created_;
  std::map<std::string, std::uint64_t> retired_;  // actor -> highest seq a backup restore kept
  std::vector<std::string> oplog_;
};

}  // namespace

int main(int argc, char** argv) {
  if (!crypto::init()) return 2;
  const std::uint64_t first = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1;
  const std::uint64_t count = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 200;
  const bool verbose = argc > 3 && std::string(argv[3]) == "--verbose";
  std::size_t total_events = 0, degenerate = 0;
  for (std::uint64_t seed = first; seed < first + count; ++seed) {
    World world(seed, verbose);
    world.run_faulty(300);
    world.heal();
    const std::string problems = world.check();
    total_events += world.events();
    if (problems.find("degenerate") != std::string::npos) {
      ++degenerate;
      continue;
    }
    if (!problems.empty()) {
      std::printf("seed %llu did not converge:\n%s-- operation log --\n",
                  static_cast<unsigned long long>(seed), problems.c_str());
      for (const auto& line : world.oplog()) std::printf("%s\n", line.c_str());
      std::printf("re-run: parley_sim %llu 1 --verbose\n", static_cast<unsigned long long>(seed));
      return 1;
    }
  }
  std::printf("%llu seeds converged (%zu events, %zu runs ended with no members)\n",
              static_cast<unsigned long long>(count), total_events, degenerate);
  return 0;
}
