// `connectable status` against a state dir of stand-in shims (records written here, control
// sockets served by a ShimFarm).
#include "injector/status_command.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Poco/JSON/Parser.h>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "common/utf8.h"
#include "injector/docker_container.h"
#include "injector/label_parser.h"
#include "injector/problem_records.h"
#include "injector/process_handle.h"
#include "injector/shim_supervisor.h"
#include "injector/state_dir_lock.h"
#include "tests/support/captured_output.h"
#include "tests/support/process.h"
#include "tests/support/shim_farm.h"

using namespace connectable;
using namespace std::chrono_literals;
using connectable::testing::CapturedOutput;
using connectable::testing::ShimFarm;
using connectable::testing::tempDir;

namespace {

std::string idOf(size_t i) {
  char id[65];
  std::snprintf(id, sizeof id, "%064zx", i + 0xc0ffee);
  return id;
}

// The record of shim `pid` as the injector writes it: its start time and arguments as
// they are now. Of this very process by default, which runs as a shim would, and answers
// for it through a ShimFarm.
ShimRecord recordOf(size_t i, pid_t pid = getpid()) {
  ShimRecord record;
  record.info.containerId = idOf(i);
  record.info.containerName = "app" + std::to_string(i);
  record.info.shimPid = pid;
  record.info.initPid = 1;
  record.info.ports = "6000";
  auto started = processStartTime(pid);
  BOOST_REQUIRE(started);
  record.shimStartTime = *started;
  record.args = processArguments(pid);
  return record;
}

void writeRecord(const std::string& dir, const ShimRecord& record) {
  std::ofstream out(dir + "/shims/" + record.info.containerId + ".json");
  out << shimRecordText(record);
}

void writeRecord(const std::string& dir, size_t i) {
  writeRecord(dir, recordOf(i));
}

// The record of a shim that ran a moment ago: killed and reaped since, its pid free.
ShimRecord recordOfAnEndedShim(size_t i) {
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  BOOST_REQUIRE(child > 0);
  ShimRecord record = recordOf(i, child);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  return record;
}

// The soft limit under which exactly `free` descriptor numbers are unused: new descriptors
// take the lowest free number, and the limit bounds the number, not the count.
rlim_t limitLeaving(int free) {
  int fd = 0;
  for (int unused = 0;; ++fd) {
    if (fcntl(fd, F_GETFD) < 0 && ++unused == free) break;
  }
  return static_cast<rlim_t>(fd + 1);
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A shim runs as nobody next to untrusted code, and may be that code's by now: what it
// answers is shown, never trusted to keep its place.
StatusRow rowAnswering(const std::string& shimJson) {
  StatusRow r;
  r.containerName = "app";
  r.containerId = idOf(0);
  r.shimPid = 42;
  r.shimJson = shimJson;
  return r;
}

bool hasControlCharacters(const std::string& text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return c != '\n' && (u < 0x20 || u == 0x7f);
  });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(StatusCommand)

BOOST_AUTO_TEST_CASE(AMistypedOptionIsNamedWithTheOneItWasLikelyMeantAs) {
  const std::string dir = tempDir();
  auto refusal = [&](std::vector<std::string> args) {
    CapturedOutput err(STDERR_FILENO, dir + "/err.txt");
    const int code = runStatusCommand(args);
    err.restore();
    BOOST_TEST(code == 2);
    return err.text();
  };
  std::string text = refusal({"--statedir", dir});
  BOOST_TEST(text.find("unexpected argument '--statedir' (did you mean '--state-dir'?)") != std::string::npos, text);
  text = refusal({"--jsn"});
  BOOST_TEST(text.find("unexpected argument '--jsn' (did you mean '--json'?)") != std::string::npos, text);
  text = refusal({"--colour"});  // near none: no guess
  BOOST_TEST(text.find("unexpected argument '--colour'\n") != std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(MoreShimsThanDescriptorsLeftAreAllShown) {
  constexpr size_t kShims = 100;
  std::string dir = tempDir();
  BOOST_REQUIRE(mkdir((dir + "/shims").c_str(), 0700) == 0);
  std::vector<std::string> sockets;
  for (size_t i = 0; i < kShims; ++i) {
    writeRecord(dir, i);
    sockets.push_back(dir + "/shims/" + idOf(i) + ".sock");
  }
  ShimFarm shims(sockets, [](size_t) { return R"({"ports":[]})"; }, 20ms);

  // Room for about seventy more descriptors, the farm's accepted connections included:
  // far fewer than one per shim, at both ends.
  rlimit saved{};
  BOOST_REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  rlimit tight = saved;
  tight.rlim_cur = limitLeaving(80);
  CapturedOutput out(STDOUT_FILENO, dir + "/out.json");
  BOOST_REQUIRE(setrlimit(RLIMIT_NOFILE, &tight) == 0);
  int code = runStatusCommand({"--json", "--state-dir", dir});
  setrlimit(RLIMIT_NOFILE, &saved);
  out.restore();

  std::string text = out.text();
  BOOST_TEST(code == 0);
  BOOST_TEST(count(text, R"("shim":{"ports":[]})") == kShims, text.substr(0, 2000));
  BOOST_TEST(text.find("Too many open files") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(ContainersAreShownWithTheLabelsIgnoredAndThoseWithNoShimWithWhy) {
  // What the injector could not do is recorded beside the shims: the question an operator
  // asks first ("why does my container have no port 6000?") is answered here, not only in
  // the injector's log.
  std::string dir = tempDir();
  BOOST_REQUIRE(mkdir((dir + "/shims").c_str(), 0700) == 0);
  writeRecord(dir, 0);
  ShimFarm shims({dir + "/shims/" + idOf(0) + ".sock"}, [](size_t) { return R"({"ports":[]})"; }, 20ms);
  ProblemRecords problems(dir);
  BOOST_REQUIRE(problems.init());
  problems.set({idOf(0), "app0", {"ignored bad label: connect.70000: '70000' is out of range"}});
  problems.set({idOf(1), "lonely", {"ignored bad label: connect.0: '0' is out of range"}});
  problems.set({idOf(2), "hosty", {"no shim: it uses the host's network, where connectable never injects"}});
  problems.set({idOf(3), "fine", {}});  // none: no record

  CapturedOutput out(STDOUT_FILENO, dir + "/out.txt");
  int code = runStatusCommand({"--state-dir", dir});
  out.restore();
  std::string text = out.text();
  BOOST_TEST(code == 0);
  BOOST_TEST(text.find("app0 (" + shortContainerId(idOf(0)) + "): ignored bad label: connect.70000") != std::string::npos, text);
  BOOST_TEST(text.find("\nlonely ") != std::string::npos, text);  // a row, though it has no shim
  BOOST_TEST(text.find("lonely (" + shortContainerId(idOf(1)) + "): ignored bad label: connect.0") != std::string::npos, text);
  BOOST_TEST(text.find("hosty (" + shortContainerId(idOf(2)) + "): no shim: it uses the host's network") != std::string::npos, text);
  BOOST_TEST(text.find("fine") == std::string::npos, text);

  CapturedOutput one(STDOUT_FILENO, dir + "/one.json");
  code = runStatusCommand({"--json", "--state-dir", dir, "hosty"});
  one.restore();
  BOOST_TEST(code == 0);
  Poco::JSON::Parser parser;
  auto rows = parser.parse(one.text()).extract<Poco::JSON::Array::Ptr>();
  BOOST_REQUIRE(rows->size() == 1u);
  auto row = rows->getObject(0);
  BOOST_TEST(row->getValue<std::string>("container_name") == "hosty");
  BOOST_TEST(row->isNull("shim"));
  BOOST_TEST(row->getArray("problems")->getElement<std::string>(0).find("no shim: ") == 0u);

  // A container gone while the injector was away loses its record at the next reconcile.
  problems.remove(idOf(1));
  CapturedOutput after(STDOUT_FILENO, dir + "/after.txt");
  BOOST_TEST(runStatusCommand({"--state-dir", dir}) == 0);
  after.restore();
  BOOST_TEST(after.text().find("lonely") == std::string::npos, after.text());
  BOOST_TEST(after.text().find("app0 (") != std::string::npos, after.text());
}

BOOST_AUTO_TEST_CASE(AContainerWhoseLabelNamesAHostInNonAsciiLettersIsShownWithWhy) {
  // Docker hands over labels as UTF-8; the note on one must stay readable as JSON.
  std::string dir = tempDir();
  BOOST_REQUIRE(mkdir((dir + "/shims").c_str(), 0700) == 0);
  ContainerRequest request = parseContainerLabels({{"connect.6000", "r\xc3\xa9" "dis.service.consul"}});
  BOOST_REQUIRE(request.errors.size() == 1u);
  ProblemRecords problems(dir);
  BOOST_REQUIRE(problems.init());
  problems.set({idOf(0), "accented", {"ignored bad label: " + request.errors[0]}});

  CapturedOutput out(STDOUT_FILENO, dir + "/out.txt");
  BOOST_TEST(runStatusCommand({"--state-dir", dir}) == 0);
  out.restore();
  BOOST_TEST(out.text().find("accented (" + shortContainerId(idOf(0)) + "): ignored bad label: label 'connect.6000=") !=
                 std::string::npos,
             out.text());
}

BOOST_AUTO_TEST_CASE(AShimsAnswerCannotAddRowsOfOtherContainersToTheJson) {
  // Valid JSON once pasted between the array's braces: a row for a container of its choice.
  std::string forged = R"({"ports":[]}},{"container_name":"db","container_id":"d","shim_pid":1,"restarts":0,"error":null,"shim":{"ports":[]})";
  std::string text = formatStatusJson({rowAnswering(forged)});
  Poco::JSON::Array::Ptr rows;
  BOOST_REQUIRE_NO_THROW(rows = Poco::JSON::Parser().parse(text).extract<Poco::JSON::Array::Ptr>());
  BOOST_REQUIRE_EQUAL(rows->size(), 1u);
  auto row = rows->getObject(0);
  BOOST_TEST(row->getValue<std::string>("container_name") == "app");
  BOOST_TEST(row->isNull("shim"));
  BOOST_TEST(row->getValue<std::string>("error").find("unreadable status") != std::string::npos);
  BOOST_TEST(text.find("\"db\"") == std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(AShimsAnswerCannotHideTextBehindAByteTheJsonParserTakesForTheEnd) {
  // POCO's parser stops at a 0xff byte as at the end of its input: what follows it went
  // unchecked into the array, and no JSON reader could read the array any more.
  std::string forged = std::string(R"({"ports":[]})") + "\xff" +
                       R"(},{"container_name":"db","container_id":"d","shim_pid":1,"restarts":0,"error":null,"shim":{"ports":[]})";
  std::string text = formatStatusJson({rowAnswering(forged)});
  BOOST_TEST(isUtf8(text));
  Poco::JSON::Array::Ptr rows;
  BOOST_REQUIRE_NO_THROW(rows = Poco::JSON::Parser().parse(text).extract<Poco::JSON::Array::Ptr>());
  BOOST_REQUIRE_EQUAL(rows->size(), 1u);
  BOOST_TEST(rows->getObject(0)->isNull("shim"));
  BOOST_TEST(rows->getObject(0)->getValue<std::string>("error").find("unreadable status") != std::string::npos);
  BOOST_TEST(text.find("\"db\"") == std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(APortTheShimDoesNotServeHasANoteOfItsOwnWhateverTheLastErrorIs) {
  const std::string port = R"("connections":{"active":0,"total":0},"bytes":{"to_backends":0,"from_backends":0},)"
                           R"("failures":{},"backends":[])";
  const std::string shim = R"({"uptime_seconds":1,"last_error":{"message":"port 6001: no backend reachable","seconds_ago":1},)"
                           R"("ports":[{"port":6000,"target":"t","listen":[],"not_served":"port 6000 is already in use",)" +
                           port + R"(},{"port":6001,"target":"u","listen":["127.0.0.1:6001"],"not_served":null,)" + port +
                           "}]}";
  const std::string table = formatStatusTable({rowAnswering(shim)});
  BOOST_TEST(count(table, "not served") == 1u, table);
  BOOST_TEST(table.find(": port 6000 not served: port 6000 is already in use\n") != std::string::npos, table);
  BOOST_TEST(table.find("last error 1s ago: port 6001: no backend reachable") != std::string::npos, table);
}

BOOST_AUTO_TEST_CASE(APortTheShimDoesNotServeSaysNotServedInItsRowNotItsBackendsUp) {
  // The container's own program was first on 6000: the shim still resolves its target and
  // reports the backend up, but every connection to 6000 reaches the program. The row said
  // `up` and 0/0 as if 6000 were served; only the note below told otherwise.
  const std::string port = R"("connections":{"active":0,"total":0},"bytes":{"to_backends":0,"from_backends":0},)"
                           R"("failures":{},"backends":[{"address":"127.0.0.1:18081","target":"127.0.0.1:18081",)"
                           R"("state":"up","penalty_seconds_left":0}])";
  const std::string shim =
      R"({"uptime_seconds":9,"last_error":null,"ports":[)"
      R"({"port":6000,"target":"127.0.0.1:18081","listen":[],"not_served":"port 6000 is already in use",)" +
      port + R"(},{"port":6001,"target":"127.0.0.1:18081","listen":["127.0.0.1:6001"],"not_served":null,)" + port +
      "}]}";
  const std::string table = formatStatusTable({rowAnswering(shim)});
  const std::string row = "\napp +" + shortContainerId(idOf(0)) + " +";
  BOOST_TEST(
      std::regex_search(table, std::regex(row + "6000 +127\\.0\\.0\\.1:18081 +NOT SERVED +- +- +- +42 +0 +9s\n")),
      table);
  BOOST_TEST(std::regex_search(
                 table, std::regex(row + "6001 +127\\.0\\.0\\.1:18081 +127\\.0\\.0\\.1:18081 up +0/0 +0/0 +- +42 ")),
             table);
  BOOST_TEST(count(table, "NOT SERVED") == 1u, table);
  // and why, below the table
  BOOST_TEST(table.find(": port 6000 not served: port 6000 is already in use\n") != std::string::npos, table);

  // The JSON is the shim's own answer, which says it as `not_served`.
  auto ports = Poco::JSON::Parser()
                   .parse(formatStatusJson({rowAnswering(shim)}))
                   .extract<Poco::JSON::Array::Ptr>()
                   ->getObject(0)
                   ->getObject("shim")
                   ->getArray("ports");
  BOOST_TEST(ports->getObject(0)->getValue<std::string>("not_served") == "port 6000 is already in use");
  BOOST_TEST(ports->getObject(1)->isNull("not_served"));
}

// One port of a shim's answer, as shim/shim_status.cc writes it: `targets` its targets'
// entries, `backends` its backends' addresses.
std::string portJson(int number, const std::string& target, const std::vector<std::string>& targets,
                     const std::vector<std::string>& backends) {
  std::string t, b;
  for (const auto& entry : targets) t += (t.empty() ? "" : ",") + entry;
  for (const auto& address : backends)
    b += std::string(b.empty() ? "" : ",") + R"({"address":")" + address +
         R"(","target":"t","state":"up","penalty_seconds_left":0})";
  return R"({"port":)" + std::to_string(number) + R"(,"target":")" + target + R"(","listen":["127.0.0.1:)" +
         std::to_string(number) + R"("],"not_served":null,"connections":{"active":0,"total":0},)" +
         R"("bytes":{"to_backends":0,"from_backends":0},"failures":{},"targets":[)" + t + R"(],"backends":[)" + b +
         "]}";
}

std::string targetJson(const std::string& target, const std::string& dns, const std::string& outside = "") {
  return R"({"target":")" + target + R"(","kind":"srv","dns":")" + dns + R"(","outside_allow_upstream":[)" + outside +
         R"(],"backends":[]})";
}

std::string shimJson(const std::string& lastError, const std::vector<std::string>& ports) {
  std::string p;
  for (const auto& port : ports) p += (p.empty() ? "" : ",") + port;
  return R"({"uptime_seconds":60,"last_error":{"message":")" + lastError + R"(","seconds_ago":2},"ports":[)" + p + "]}";
}

BOOST_AUTO_TEST_CASE(EveryPortsCurrentProblemHasANoteWhateverTheLastErrorIs) {
  // Port 6000's name has no backends; port 6001 failed since: the shim's last error is
  // 6001's, and with it alone the table never said that 6000 has no backends.
  const std::string nxdomain = "failed: nosuch.service.consul: no such name (NXDOMAIN)";
  const std::string timeout = "stale: A query for db.example.org: Timeout while contacting DNS servers";
  const std::string shim =
      shimJson("port 6001: no backend reachable: connection refused",
               {portJson(6000, "nosuch.service.consul", {targetJson("nosuch.service.consul", nxdomain)}, {}),
                portJson(6001, "198.18.0.9:80", {targetJson("198.18.0.9:80", "literal")}, {"198.18.0.9:80"}),
                portJson(6002, "db.example.org:5432,cache.service.consul",
                         {targetJson("db.example.org:5432", timeout),
                          targetJson("cache.service.consul", "failed: every DNS server failed it")},
                         {"198.18.0.7:5432"}),
                portJson(6003, "late.service.consul", {targetJson("late.service.consul", "pending")}, {}),
                portJson(6004, "web.service.consul", {targetJson("web.service.consul", "ok", R"("203.0.113.5:80")")},
                         {"198.18.0.8:80"})});
  const std::string table = formatStatusTable({rowAnswering(shim)});
  const std::string app = "\napp (" + shortContainerId(idOf(0)) + "): ";
  auto has = [&](const std::string& note) { return table.find(app + note + "\n") != std::string::npos; };
  BOOST_TEST(has("port 6000: no backends: DNS failing: nosuch.service.consul: no such name (NXDOMAIN)"), table);
  BOOST_TEST(has("last error 2s ago: port 6001: no backend reachable: connection refused"), table);
  // A port whose problem ended has no note: its last error stays the shim's, as it was.
  BOOST_TEST(table.find(app + "port 6001") == std::string::npos, table);
  // Served by one target while another fails: both failing names, the one served stale said so.
  BOOST_TEST(has("port 6002: DNS failing, its last answer still used: A query for db.example.org: Timeout while "
                 "contacting DNS servers; DNS failing: cache.service.consul: every DNS server failed it"),
             table);
  BOOST_TEST(has("port 6003: no backends: waiting for the first DNS answer for late.service.consul"), table);
  BOOST_TEST(has("port 6004: web.service.consul: 203.0.113.5:80 outside --allow-upstream"), table);
  BOOST_TEST(count(table, app) == 5u, table);  // one note per port with a problem, and the last error
}

BOOST_AUTO_TEST_CASE(ALabelOfHundredsOfTargetsMakesNoLineOfThousandsButTheJsonHasThemAll) {
  // A user's label named 701 static targets: its row was 31,000 characters long.
  constexpr int kTargets = 701;
  std::vector<std::string> addresses, targets;
  for (int i = 0; i < kTargets; ++i) {
    addresses.push_back("198.18." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":80");
    targets.push_back(targetJson(addresses.back(), "literal"));
  }
  std::string label;
  for (const auto& a : addresses) label += (label.empty() ? "" : ",") + a;
  std::string port = portJson(6000, label, targets, addresses);
  // Two of the backends left out are penalized: still counted, or the table hid them.
  for (const char* which : {"198.18.1.0:80", "198.18.2.0:80"}) {
    const std::string up = std::string(R"({"address":")") + which + R"(","target":"t","state":"up")";
    BOOST_REQUIRE(port.find(up) != std::string::npos);
    port.replace(port.find(up), up.size(),
                 std::string(R"({"address":")") + which + R"(","target":"t","state":"penalized")");
  }
  const std::string shim = shimJson("m", {port});

  const std::string table = formatStatusTable({rowAnswering(shim)});
  size_t longest = 0;
  for (size_t from = 0, to; (to = table.find('\n', from)) != std::string::npos; from = to + 1)
    longest = std::max(longest, to - from);
  BOOST_TEST(longest < 300u, table);
  BOOST_TEST(table.find("  198.18.0.0:80,198.18.0.1:80,198.18.0.2:80 ... and 698 more  ") != std::string::npos, table);
  BOOST_TEST(table.find("  198.18.0.0:80 up, 198.18.0.1:80 up, 198.18.0.2:80 up ... and 698 more (2 penalized)  ") !=
                 std::string::npos,
             table);

  auto rows = Poco::JSON::Parser().parse(formatStatusJson({rowAnswering(shim)})).extract<Poco::JSON::Array::Ptr>();
  auto ports = rows->getObject(0)->getObject("shim")->getArray("ports");
  BOOST_TEST(ports->getObject(0)->getValue<std::string>("target") == label);
  BOOST_TEST(ports->getObject(0)->getArray("backends")->size() == static_cast<size_t>(kTargets));
}

BOOST_AUTO_TEST_CASE(APenalizedBackendShowsWhenItIsProbedOrThatItIsBeingProbed) {
  // Past its penalty's end the shim tests it (penalty_seconds_left 0): "penalized 0s" would
  // read as "in turn now".
  std::string port = portJson(6000, "t", {targetJson("t", "ok")}, {"198.18.0.5:6379", "198.18.0.6:6379"});
  auto penalize = [&](const std::string& address, const std::string& rest) {
    const std::string up = R"({"address":")" + address + R"(","target":"t","state":"up","penalty_seconds_left":0)";
    BOOST_REQUIRE(port.find(up) != std::string::npos);
    port.replace(port.find(up), up.size(), R"({"address":")" + address + R"(","target":"t","state":"penalized",)" + rest);
  };
  penalize("198.18.0.5:6379", R"("penalty_seconds_left":3.6,"probing":false)");
  penalize("198.18.0.6:6379", R"("penalty_seconds_left":0,"probing":true)");
  const std::string table = formatStatusTable({rowAnswering(shimJson("m", {port}))});
  BOOST_TEST(table.find("198.18.0.5:6379 penalized 4s, 198.18.0.6:6379 penalized, probing") != std::string::npos, table);
}

BOOST_AUTO_TEST_CASE(TheTableReadsAShimsAnswerAsTheJsonDoes) {
  // An answer --json calls unreadable shows no ports in the table either.
  std::string shim = std::string(R"({"uptime_seconds":1,"ports":[{"port":6000,"target":"t","connections":{"active":0,"total":0},)"
                                 R"("bytes":{"to_backends":0,"from_backends":0},"failures":{},"backends":[]}]})") +
                     "\xff" "garbage";
  BOOST_TEST(formatStatusJson({rowAnswering(shim)}).find("unreadable status") != std::string::npos);
  std::string table = formatStatusTable({rowAnswering(shim)});
  BOOST_TEST(table.find("6000") == std::string::npos, table);
  BOOST_TEST(table.find("app: unreadable status") != std::string::npos, table);
}

BOOST_AUTO_TEST_CASE(ControlCharactersAShimAnswersNeverReachTheTerminal) {
  // Escape sequences rewrite a terminal's title, its clipboard, or the rows above.
  const std::string esc = R"(\u001b]0;owned\u0007\u001b[1A\u001b[2K)";
  std::string shim = R"({"uptime_seconds":1,"ports":[{"port":6000,"target":")" + esc +
                     R"(","connections":{"active":0,"total":0},"bytes":{"to_backends":0,"from_backends":0},)"
                     R"("failures":{"no_backend":0},"backends":[{"address":")" + esc +
                     R"(","state":"up"}]}],"last_error":{"message":")" + esc + R"(","seconds_ago":1}})";
  std::string table = formatStatusTable({rowAnswering(shim)});
  BOOST_TEST(table.find("6000") != std::string::npos, table);
  BOOST_TEST(table.find("owned") != std::string::npos, table);  // shown, made harmless
  BOOST_TEST(!hasControlCharacters(table), table);

  StatusRow refused = rowAnswering("");
  refused.error = "shim answered 500: \x1b]52;c;cm0gLXJmIH4K\x07";
  std::string notes = formatStatusTable({refused});
  BOOST_TEST(!hasControlCharacters(notes), notes);
}

BOOST_AUTO_TEST_CASE(AShimsAnswerWithARawC1ControlIsNotPassedOnInTheJson) {
  // Valid in a JSON string, but U+009B is CSI to xterm: --json on a terminal would obey it.
  std::string shim = "{\"uptime_seconds\":1,\"ports\":[],\"x\":\"\xc2\x9b" "2J\"}";
  std::string json = formatStatusJson({rowAnswering(shim)});
  BOOST_TEST(json.find("unreadable status: U+009B at byte 36 of the answer, which a terminal would act on") !=
                 std::string::npos,
             json);
  BOOST_TEST(json.find("\xc2\x9b") == std::string::npos, json);
}

BOOST_AUTO_TEST_CASE(AShimsAgesPastAnyClockAreShownAsTheLongestAge) {
  // JSON numbers have no bound: an uptime beyond 64 bits of seconds is clamped, not
  // converted out of range (undefined; x86 shows it as 0s).
  std::string shim = R"({"uptime_seconds":1e300,"ports":[{"port":6000,"target":"t","connections":{"active":0,"total":0},)"
                     R"("bytes":{"to_backends":0,"from_backends":0},"failures":{},"backends":[]}],)"
                     R"("last_error":{"message":"m","seconds_ago":1e300}})";
  std::string table = formatStatusTable({rowAnswering(shim)});
  BOOST_TEST(table.find("  213503982334601d7h0m15s\n") != std::string::npos, table);
  BOOST_TEST(table.find("last error 213503982334601d7h0m15s ago: m") != std::string::npos, table);
}

BOOST_AUTO_TEST_CASE(AStateDirWithoutShimsSaysTheInjectorsStateDirMustBeGiven) {
  // An injector started by hand with --state-dir /run/connectable-X is running and we are
  // root: the hint must name the third cause, the one that fits.
  std::string dir = tempDir();
  CapturedOutput err(STDERR_FILENO, dir + "/err.txt");
  int code = runStatusCommand({"--state-dir", dir + "/elsewhere"});
  err.restore();
  BOOST_TEST(code == 1);
  BOOST_TEST(err.text().find("cannot read " + dir + "/elsewhere/shims: No such file or directory") != std::string::npos,
             err.text());
  BOOST_TEST(err.text().find("--state-dir DIR") != std::string::npos, err.text());
}

BOOST_AUTO_TEST_CASE(EveryRowWithoutAShimSaysWhyInItsJsonError) {
  // `shim` null with `error` null left a script to guess from the notes which of them is
  // the reason; the reason is the row's error now.
  std::string dir = tempDir();
  BOOST_REQUIRE(mkdir((dir + "/shims").c_str(), 0700) == 0);
  ProblemRecords problems(dir);
  BOOST_REQUIRE(problems.init());
  problems.set({idOf(1), "lonely", {"ignored bad label: label 'connect.0=x': port '0' is out of range (1-65535)",
                                    "no shim: it has no usable connect.PORT label"}});
  problems.set({idOf(2), "stopped", {"ignored bad label: label 'connectable.bogus=1': unknown option 'bogus'"}});
  auto injector = StateDirLock::acquire(dir);  // the records are current
  BOOST_REQUIRE(injector);

  CapturedOutput out(STDOUT_FILENO, dir + "/out.json");
  BOOST_TEST(runStatusCommand({"--json", "--state-dir", dir}) == 0);
  out.restore();
  auto rows = Poco::JSON::Parser().parse(out.text()).extract<Poco::JSON::Array::Ptr>();
  BOOST_REQUIRE_EQUAL(rows->size(), 2u);
  for (unsigned i = 0; i < rows->size(); ++i) {
    auto row = rows->getObject(i);
    BOOST_TEST(row->isNull("shim"));
    BOOST_REQUIRE_MESSAGE(!row->isNull("error"), out.text());
    const std::string error = row->getValue<std::string>("error");
    if (row->getValue<std::string>("container_name") == "lonely")
      BOOST_TEST(error == "no shim: it has no usable connect.PORT label");
    else
      BOOST_TEST(error.find("no shim: none runs for it now") == 0u, error);
  }
}

BOOST_AUTO_TEST_CASE(AShimWaitingForItsNextTryShowsNoPidButWhyAndWhen) {
  // Between a shim's death and its next try (10 s while a port is taken inside its
  // container) no process runs: the row showed the dead one's pid, and the note and the
  // JSON error said only that its socket was missing.
  std::string dir = tempDir();
  BOOST_REQUIRE(mkdir((dir + "/shims").c_str(), 0700) == 0);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  {
    std::ofstream out(dir + "/shims/" + idOf(0) + ".json");
    out << R"({"container_id":")" << idOf(0) << R"(","container_name":"app","shim_pid":0,"shim_start_time":1,)"
        << R"("init_pid":1,"init_start_time":1,"netns_inode":1,"ports":"8080","restarts":2,)"
        << R"("not_running":"a port of 8080 is already taken inside the container","next_start":)" << now + 7
        << R"(,"port_retries":4,"args":[]})";
  }
  CapturedOutput out(STDOUT_FILENO, dir + "/out.txt");
  BOOST_TEST(runStatusCommand({"--state-dir", dir}) == 0);
  out.restore();
  const std::string text = out.text();
  BOOST_TEST(std::regex_search(text, std::regex("\napp +" + shortContainerId(idOf(0)) + "( +-){7} +2 +-\n")), text);
  BOOST_TEST(text.find("app (" + shortContainerId(idOf(0)) +
                       "): shim not running: a port of 8080 is already taken inside the container; next try in ") !=
                 std::string::npos, text);
  BOOST_TEST(text.find("(the port was still taken at 4 tries so far)") != std::string::npos, text);
  BOOST_TEST(text.find("No such file") == std::string::npos, text);

  CapturedOutput json(STDOUT_FILENO, dir + "/out.json");
  BOOST_TEST(runStatusCommand({"--json", "--state-dir", dir}) == 0);
  json.restore();
  auto row = Poco::JSON::Parser().parse(json.text()).extract<Poco::JSON::Array::Ptr>()->getObject(0);
  BOOST_TEST(row->getValue<int>("shim_pid") == 0);
  BOOST_TEST(row->isNull("shim"));
  BOOST_TEST(row->getValue<std::string>("error").find("shim not running: a port of 8080 is already taken") == 0u,
             row->getValue<std::string>("error"));
}

BOOST_AUTO_TEST_CASE(TheNextTryIsCountedDownAndNeverShownInThePast) {
  ShimInfo info;
  info.notRunning = "it died (killed by signal 9)";
  info.nextStart = 1000;
  BOOST_TEST(notRunningText(info, 993) == "shim not running: it died (killed by signal 9); next try in 7s");
  BOOST_TEST(notRunningText(info, 1002) == "shim not running: it died (killed by signal 9); next try in 0s");
  info.portRetries = 1;
  BOOST_TEST(notRunningText(info, 1000).find("(the port was still taken at 1 try so far)") != std::string::npos);
}

// Stopped injector, shims killed: the records stay, and named the dead pids as SHIM PID of
// rows that looked served, with only `connecting to ...sock: Connection refused` below.
BOOST_AUTO_TEST_CASE(AShimThatIsGoneShowsNoPidAndANoteThatItsRecordIsStaleAndNoInjectorRuns) {
  std::string dir = tempDir();
  BOOST_REQUIRE(mkdir((dir + "/shims").c_str(), 0700) == 0);
  const ShimRecord ended = recordOfAnEndedShim(0);
  writeRecord(dir, ended);
  // A pid given to another process since: this one, started later than the record says.
  ShimRecord reused = recordOf(1);
  reused.shimStartTime -= 1;
  writeRecord(dir, reused);
  // Or started with other arguments than the shim was: not the shim either.
  ShimRecord otherArgs = recordOf(2);
  otherArgs.args.push_back("--connect");
  writeRecord(dir, otherArgs);
  writeRecord(dir, 3);  // a shim that runs
  std::vector<std::string> sockets;
  for (size_t i = 0; i < 4; ++i) sockets.push_back(dir + "/shims/" + idOf(i) + ".sock");
  ShimFarm shims(
      sockets, [](size_t) { return shimJson("m", {portJson(6000, "198.18.0.9:80", {}, {"198.18.0.9:80"})}); }, 0ms);

  CapturedOutput out(STDOUT_FILENO, dir + "/out.txt");
  const int code = runStatusCommand({"--state-dir", dir});
  out.restore();
  const std::string text = out.text();
  BOOST_TEST(code == 3);            // the table is shown, but it cannot be what the records say
  BOOST_TEST(shims.asked() == 1u);  // the socket of a gone shim is not asked, whoever answers there
  const std::string stale = "is gone and its record is stale: no injector is running with this state dir to remove it";
  for (size_t i = 0; i < 3; ++i) {
    const std::string name = "app" + std::to_string(i), id = shortContainerId(idOf(i));
    BOOST_TEST(std::regex_search(text, std::regex("\n" + name + " +" + id + "( +-){7} +0 +-\n")), text);
    BOOST_TEST(
        text.find(name + " (" + id + "): its shim (pid " + std::to_string(i == 0 ? ended.info.shimPid : getpid()) +
                  ") " + stale + "\n") != std::string::npos,
        text);
  }
  BOOST_TEST(std::regex_search(text, std::regex("\napp3 +" + shortContainerId(idOf(3)) + " +6000 .* " +
                                                std::to_string(getpid()) + " +0 +1m0s\n")),
             text);
  BOOST_TEST(text.find("Connection refused") == std::string::npos, text);

  CapturedOutput json(STDOUT_FILENO, dir + "/out.json");
  BOOST_TEST(runStatusCommand({"--json", "--state-dir", dir, "app0"}) == 3);
  json.restore();
  auto rows = Poco::JSON::Parser().parse(json.text()).extract<Poco::JSON::Array::Ptr>();
  BOOST_REQUIRE_EQUAL(rows->size(), 1u);
  BOOST_TEST(rows->getObject(0)->getValue<int>("shim_pid") == 0);  // its pid may be anyone's by now
  BOOST_TEST(rows->getObject(0)->isNull("shim"));
  BOOST_TEST(rows->getObject(0)->getValue<std::string>("error") ==
             "its shim (pid " + std::to_string(ended.info.shimPid) + ") " + stale);

  // Only the containers asked for count: a gone shim of another is no failure of this one.
  CapturedOutput one(STDOUT_FILENO, dir + "/one.txt");
  BOOST_TEST(runStatusCommand({"--state-dir", dir, "app3"}) == 0);
  one.restore();
}

BOOST_AUTO_TEST_CASE(AShimThatIsGoneWhileAnInjectorRunsIsSaidToBeNotHandledYet) {
  // The running injector hears of a shim's end at once and rewrites its record: a gone
  // shim it still records is one it is handling now, or a stuck injector's.
  std::string dir = tempDir();
  BOOST_REQUIRE(mkdir((dir + "/shims").c_str(), 0700) == 0);
  auto injector = StateDirLock::acquire(dir);
  BOOST_REQUIRE(injector);
  const ShimRecord ended = recordOfAnEndedShim(0);
  writeRecord(dir, ended);
  CapturedOutput out(STDOUT_FILENO, dir + "/out.txt");
  BOOST_TEST(runStatusCommand({"--state-dir", dir}) == 3);
  out.restore();
  BOOST_TEST(
      out.text().find("app0 (" + shortContainerId(idOf(0)) + "): its shim (pid " + std::to_string(ended.info.shimPid) +
                      ") is gone and its record is stale: the injector running with this state dir has not "
                      "handled it yet\n") != std::string::npos,
      out.text());
}

BOOST_AUTO_TEST_CASE(AContainerWithoutAShimShownWhileNoInjectorRunsIsSaidToBeAsLastRecorded) {
  // Its problems are removed by the injector when the container goes: with none running,
  // they are what was so when it stopped.
  std::string dir = tempDir();
  BOOST_REQUIRE(mkdir((dir + "/shims").c_str(), 0700) == 0);
  ProblemRecords problems(dir);
  BOOST_REQUIRE(problems.init());
  problems.set({idOf(1), "lonely", {"ignored bad label: connect.0: '0' is out of range"}});
  auto ask = [&](const std::vector<std::string>& args) {
    CapturedOutput out(STDOUT_FILENO, dir + "/out.txt");
    BOOST_TEST(runStatusCommand(args) == 0);
    out.restore();
    return out.text();
  };
  const std::string note = "lonely (" + shortContainerId(idOf(1)) +
                           "): as an injector last recorded it: none runs with this state dir now, and the container "
                           "may have changed or gone since\n";
  const std::string without = ask({"--state-dir", dir});
  BOOST_TEST(without.find(note) != std::string::npos, without);
  BOOST_TEST(without.find("lonely (" + shortContainerId(idOf(1)) + "): ignored bad label") != std::string::npos, without);
  auto rows = Poco::JSON::Parser().parse(ask({"--json", "--state-dir", dir})).extract<Poco::JSON::Array::Ptr>();
  BOOST_REQUIRE(rows->size() == 1u);
  BOOST_TEST(rows->getObject(0)->getValue<std::string>("error") ==
             "no shim: none runs for it now (the container is not running, or not yet started); as an injector last "
             "recorded it: none runs with this state dir now, and the container may have changed or gone since");
  auto injector = StateDirLock::acquire(dir);
  BOOST_REQUIRE(injector);
  const std::string with = ask({"--state-dir", dir});
  BOOST_TEST(with.find("as an injector last recorded it") == std::string::npos, with);
}

BOOST_AUTO_TEST_CASE(AShimWaitingForANextTryNoInjectorWillMakeSaysSo) {
  // The record promises a next try; with no injector it never comes.
  std::string dir = tempDir();
  BOOST_REQUIRE(mkdir((dir + "/shims").c_str(), 0700) == 0);
  ShimRecord waiting = recordOf(0);
  waiting.info.shimPid = 0;
  waiting.info.notRunning = "it died (killed by signal 9)";
  writeRecord(dir, waiting);
  auto ask = [&] {
    CapturedOutput out(STDOUT_FILENO, dir + "/out.txt");
    BOOST_TEST(runStatusCommand({"--state-dir", dir}) == 0);  // the record says what is so: no shim runs
    out.restore();
    return out.text();
  };
  const std::string note =
      "app0 (" + shortContainerId(idOf(0)) + "): shim not running: it died (killed by signal 9); next try in 0s";
  const std::string without = ask();
  BOOST_TEST(without.find(note + ", but no injector is running with this state dir to try\n") != std::string::npos,
             without);
  auto injector = StateDirLock::acquire(dir);
  BOOST_REQUIRE(injector);
  const std::string with = ask();
  BOOST_TEST(with.find(note + "\n") != std::string::npos, with);
}

BOOST_AUTO_TEST_SUITE_END()
