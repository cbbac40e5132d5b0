#include "injector/injector_options.h"

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <fstream>

using namespace connectable;

namespace {

// A passwd and a group file of our own in a fresh directory, removed with it: what
// --shim-uids is checked against, whatever users this machine has.
struct Accounts {
  Accounts(const std::string& passwd, const std::string& group) {
    char tmpl[] = "/tmp/connectable-accounts-test.XXXXXX";
    dir = mkdtemp(tmpl);
    files.passwd = dir + "/passwd";
    files.group = dir + "/group";
    std::ofstream(files.passwd) << passwd;
    std::ofstream(files.group) << group;
  }
  ~Accounts() {
    unlink(files.passwd.c_str());
    unlink(files.group.c_str());
    rmdir(dir.c_str());
  }
  std::string dir;
  AccountFiles files;
};

const char* const kPasswd =
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "# a comment\n"
    "\n"
    "alice:x:1000:1000::/home/alice:/bin/bash\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const char* const kGroup = "root:x:0:\ndaemon:x:1:\nshadow:x:42:\nalice:x:1000:\nnogroup:x:65534:\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(InjectorCommandLineShimOptions)

BOOST_AUTO_TEST_CASE(ShimOptionsArePassedToEveryShimAfterTheShimsOwnParserAcceptedThem) {
  auto c = parseInjectorCommandLine({"--data-path", "epoll", "--balance=p2c"}, "/usr/sbin/connectable");
  BOOST_REQUIRE_MESSAGE(c, c.status().message());
  const auto& args = c->options.supervisor.shimArgs;
  BOOST_TEST((std::find(args.begin(), args.end(), "--data-path=epoll") != args.end()));
  BOOST_TEST((std::find(args.begin(), args.end(), "--balance=p2c") != args.end()));
  BOOST_TEST(c->options.supervisor.shimPath == "/usr/sbin/connectable-shim");
}

BOOST_AUTO_TEST_CASE(AFlagGivenAValueIsRefusedNotTakenAsSet) {
  // --stop-shims-on-exit=false must not stop the shims on exit.
  for (const char* flag : {"--stop-shims-on-exit=false", "--help=x", "--version=1"}) {
    auto c = parseInjectorCommandLine({flag}, "/usr/sbin/connectable");
    BOOST_REQUIRE_MESSAGE(!c, flag);
    BOOST_TEST(c.status().message().find("takes no value") != std::string::npos, c.status().message());
  }
  auto plain = parseInjectorCommandLine({"--stop-shims-on-exit"}, "/usr/sbin/connectable");
  BOOST_REQUIRE(plain);
  BOOST_TEST(plain->options.stopShimsOnExit);
}

BOOST_AUTO_TEST_CASE(AStateDirTooLongForTheShimsSocketsIsABadArgument) {
  // <state-dir>/shims/<64 hex>.sock must fit a UNIX socket address: 31 characters at most.
  const std::string longest = "/" + std::string(30, 'd');
  BOOST_TEST(static_cast<bool>(parseInjectorCommandLine({"--state-dir", longest}, "/usr/sbin/connectable")));
  auto c = parseInjectorCommandLine({"--state-dir", longest + "d"}, "/usr/sbin/connectable");
  BOOST_REQUIRE(!c);
  BOOST_TEST(c.status().message().find("--state-dir '" + longest + "d' is longer than 31 characters") != std::string::npos,
             c.status().message());
}

BOOST_AUTO_TEST_CASE(StatusAfterTheInjectorsOptionsSaysItMustComeFirstWithTheStateDirGiven) {
  // The injector's own command line with `status` appended: what a user who started it
  // with that state dir writes first.
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--state-dir", "/tmp/st", "status"},
                                               std::vector<std::string>{"--state-dir=/tmp/st", "status", "app"}}) {
    auto c = parseInjectorCommandLine(args, "/usr/sbin/connectable");
    BOOST_REQUIRE(!c);
    BOOST_TEST(c.status().message() == "'status' must come first: connectable status --state-dir" +
                                           std::string(args[0].find('=') == std::string::npos ? " " : "=") + "/tmp/st",
               c.status().message());
  }
  auto plain = parseInjectorCommandLine({"--log-level=debug", "status"}, "/usr/sbin/connectable");
  BOOST_REQUIRE(!plain);
  BOOST_TEST(plain.status().message() == "'status' must come first: connectable status", plain.status().message());
  // An option of status's before it, which the injector does not take, is the same mistake.
  auto json = parseInjectorCommandLine({"--json", "--state-dir", "/tmp/st", "status", "--timeout=3s"}, "/usr/sbin/connectable");
  BOOST_REQUIRE(!json);
  BOOST_TEST(json.status().message() ==
                 "'status' must come first: connectable status --json --state-dir /tmp/st --timeout=3s",
             json.status().message());
  // Any other stray word is only named.
  auto other = parseInjectorCommandLine({"--state-dir", "/tmp/st", "stats"}, "/usr/sbin/connectable");
  BOOST_REQUIRE(!other);
  BOOST_TEST(other.status().message() == "unexpected argument 'stats'", other.status().message());
}

BOOST_AUTO_TEST_CASE(AMistypedOptionIsNamedWithTheOneItWasLikelyMeantAs) {
  const std::vector<std::pair<std::string, std::string>> typos = {
      {"--statedir", "--state-dir"}, {"--dsn", "--dns"}, {"--stop-shim-on-exit", "--stop-shims-on-exit"},
      {"--max-con", "--max-conns"}, {"--verison", "--version"}};
  for (const auto& [typed, meant] : typos) {
    auto c = parseInjectorCommandLine({typed, "x"}, "/usr/sbin/connectable");
    BOOST_REQUIRE_MESSAGE(!c, typed);
    BOOST_TEST(c.status().message() == "unknown option '" + typed + "' (did you mean '" + meant + "'?)",
               c.status().message());
  }
  // Nothing near: no guess. The shim's --connect is not an option of the injector.
  for (const std::string typed : {"--frobnicate", "--connect"}) {
    auto c = parseInjectorCommandLine({typed, "x"}, "/usr/sbin/connectable");
    BOOST_REQUIRE_MESSAGE(!c, typed);
    BOOST_TEST(c.status().message() == "unknown option '" + typed + "'", c.status().message());
  }
}

BOOST_AUTO_TEST_CASE(DashHIsHelpToo) {
  auto c = parseInjectorCommandLine({"-h"}, "/usr/sbin/connectable");
  BOOST_REQUIRE_MESSAGE(c, c.status().message());
  BOOST_TEST(c->help);
}

BOOST_AUTO_TEST_CASE(ABadShimOptionValueIsRefusedAtTheInjectorsStart) {
  auto c = parseInjectorCommandLine({"--data-path", "dpdk"}, "/usr/sbin/connectable");
  BOOST_REQUIRE(!c);
  BOOST_TEST(c.status().message().find("--data-path") != std::string::npos, c.status().message());
}

BOOST_AUTO_TEST_CASE(ABadDnsServerIsRefusedAtTheInjectorsStartNotByEveryShim) {
  // It used to pass here and make every shim exit 2: no container got a shim.
  auto c = parseInjectorCommandLine({"--dns", "bogus"}, "/usr/sbin/connectable");
  BOOST_REQUIRE(!c);
  BOOST_TEST(c.status().message().find("--dns") != std::string::npos, c.status().message());
  BOOST_TEST(static_cast<bool>(parseInjectorCommandLine({"--dns", "198.18.0.53:8600,[fd00::53]"}, "/usr/sbin/connectable")));
}

BOOST_AUTO_TEST_CASE(AllowUpstreamIsPassedToEveryShimAndABadRangeStopsTheInjector) {
  auto c = parseInjectorCommandLine({"--allow-upstream", "10.0.0.0/8,127.0.0.1"}, "/usr/sbin/connectable");
  BOOST_REQUIRE_MESSAGE(c, c.status().message());
  const auto& args = c->options.supervisor.shimArgs;
  BOOST_TEST((std::find(args.begin(), args.end(), "--allow-upstream=10.0.0.0/8,127.0.0.1") != args.end()));
  auto bad = parseInjectorCommandLine({"--allow-upstream", "10.1.0.0/8"}, "/usr/sbin/connectable");
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.status().message().find("--allow-upstream") != std::string::npos, bad.status().message());
}

BOOST_AUTO_TEST_CASE(ShimUidsAreARangeOfUidsOtherThanRootsAndExcludeAUserForAll) {
  auto c = parseInjectorCommandLine({"--shim-uids", "2000000-2065535"}, "/usr/sbin/connectable");
  BOOST_REQUIRE_MESSAGE(c, c.status().message());
  BOOST_TEST(c->options.supervisor.shimUidFirst == 2000000u);
  BOOST_TEST(c->options.supervisor.shimUidCount == 65536u);
  const Accounts none("", "");
  auto one = parseInjectorCommandLine({"--shim-uids=7-7"}, "/usr/sbin/connectable", none.files);
  BOOST_REQUIRE(one);
  BOOST_TEST(one->options.supervisor.shimUidCount == 1u);
  for (const char* bad : {"0-10", "10-5", "5", "5-", "-5", "a-b", "1-4294967295", "1-99999999999", "+1-5"}) {
    auto refused = parseInjectorCommandLine({"--shim-uids", bad}, "/usr/sbin/connectable");
    BOOST_REQUIRE_MESSAGE(!refused, bad);
    BOOST_TEST(refused.status().message().find("--shim-uids") != std::string::npos, refused.status().message());
  }
  auto both = parseInjectorCommandLine({"--user", "daemon", "--shim-uids", "2000000-2000009"}, "/usr/sbin/connectable");
  BOOST_REQUIRE(!both);
  BOOST_TEST(both.status().message().find("one or the other") != std::string::npos, both.status().message());
}

BOOST_AUTO_TEST_CASE(ShimUidsHoldingAUserOrGroupOfThisHostAreRefusedNamingOne) {
  // --shim-uids 1-100 was taken: the first shim became daemon, a later one joined group 42
  // (shadow), and 1000-1999 gave one the uid of the host's first login user, who could then
  // signal or renice it. The README promises that nothing but its own shim has its uid.
  const Accounts host(kPasswd, kGroup);
  auto refusedFor = [&](const std::string& range) {
    auto c = parseInjectorCommandLine({"--shim-uids", range}, "/usr/sbin/connectable", host.files);
    BOOST_REQUIRE_MESSAGE(!c, range);
    return c.status().message();
  };
  std::string daemon = refusedFor("1-100");
  BOOST_TEST(daemon.find("uid 1 (daemon) is in --shim-uids 1-100") != std::string::npos, daemon);
  BOOST_TEST(daemon.find("2 more users and groups") != std::string::npos, daemon);  // group 1, 42
  BOOST_TEST(daemon.find("e.g. 2000000-2065535") != std::string::npos, daemon);
  std::string shadow = refusedFor("40-50");
  BOOST_TEST(shadow.find("gid 42 (shadow) is in --shim-uids 40-50") != std::string::npos, shadow);
  std::string alice = refusedFor("1000-1999");
  BOOST_TEST(alice.find("uid 1000 (alice)") != std::string::npos, alice);
  std::string nobody = refusedFor("60000-70000");
  BOOST_TEST(nobody.find("uid 65534 (nobody)") != std::string::npos, nobody);
  // Around them, and with no files to read (a FROM scratch image), a range is fine.
  BOOST_TEST(static_cast<bool>(parseInjectorCommandLine({"--shim-uids", "2-41"}, "/usr/sbin/connectable", host.files)));
  BOOST_TEST(static_cast<bool>(
      parseInjectorCommandLine({"--shim-uids", "65535-999999"}, "/usr/sbin/connectable", host.files)));
  AccountFiles missing{host.dir + "/no-passwd", host.dir + "/no-group"};
  BOOST_TEST(static_cast<bool>(parseInjectorCommandLine({"--shim-uids", "1-100"}, "/usr/sbin/connectable", missing)));
  // The README's example range is free on this machine (its real files).
  auto readme = parseInjectorCommandLine({"--shim-uids", "2000000-2065535"}, "/usr/sbin/connectable");
  BOOST_TEST(static_cast<bool>(readme), readme.status().message());
}

BOOST_AUTO_TEST_CASE(TheUserEveryShimBecomesMustExistHereAndNotBeRoot) {
  // Else the injector ran, and every container's shim failed as it dropped privileges,
  // restarted over and over, its ports there one moment and gone the next.
  for (const char* bad : {"no-such-user-of-connectable", "root", "0"}) {
    auto c = parseInjectorCommandLine({"--user", bad}, "/usr/sbin/connectable");
    BOOST_REQUIRE_MESSAGE(!c, bad);
    BOOST_TEST(c.status().message().find("--user") != std::string::npos, c.status().message());
  }
  auto unknown = parseInjectorCommandLine({"--user=no-such-user-of-connectable"}, "/usr/sbin/connectable");
  BOOST_REQUIRE(!unknown);
  BOOST_TEST(unknown.status().message().find("unknown user 'no-such-user-of-connectable'") != std::string::npos,
             unknown.status().message());
  // The default (nobody), a user of this host's, or a uid with no passwd entry are fine,
  // and with --shim-uids no shim becomes --user.
  BOOST_TEST(static_cast<bool>(parseInjectorCommandLine({}, "/usr/sbin/connectable")));
  BOOST_TEST(static_cast<bool>(parseInjectorCommandLine({"--user", "daemon"}, "/usr/sbin/connectable")));
  BOOST_TEST(static_cast<bool>(parseInjectorCommandLine({"--user", "2000123"}, "/usr/sbin/connectable")));
  BOOST_TEST(static_cast<bool>(parseInjectorCommandLine({"--shim-uids", "2000000-2000009"}, "/usr/sbin/connectable")));
}

BOOST_AUTO_TEST_SUITE_END()
