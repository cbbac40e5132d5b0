#include "injector/docker_api_version.h"
#include "injector/docker_client.h"
#include "injector/docker_endpoint.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <boost/test/unit_test.hpp>

#include "tests/support/process.h"

using namespace connectable;

namespace {

// Sets (or unsets, with nullopt) an environment variable for one scope, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A docker CLI configuration directory, as `docker context create` and `docker context use`
// leave it: contexts stored under the SHA-256 of their names (computed here with sha256sum).
struct CliConfig {
  CliConfig() : dir(connectable::testing::tempDir()) {}
  ~CliConfig() { std::filesystem::remove_all(dir); }
  void write(const std::string& relative, const std::string& text) {
    const std::filesystem::path path = dir + "/" + relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  void context(const std::string& sha, const std::string& name, const std::string& host) {
    write("contexts/meta/" + sha + "/meta.json", R"({"Name":")" + name + R"(","Metadata":{},"Endpoints":{"docker":{"Host":")" +
                                                     host + R"(","SkipTLSVerify":false}}})");
  }
  DockerEnvironment env() const {
    DockerEnvironment e;
    e.configDir = dir;
    return e;
  }
  std::string dir;
};
const std::string kRootlessSha = "12b961af5feb3e9d39f93b2cefb9a1a944f18d02cca0cac2f04f5a982240605f";  // "rootless"
const std::string kRemoteSha = "b71199ebd070b36beab7317920c2c2f1d777df8d05e5527d8458fda57cb17a7a";    // "remote"

}  // namespace

BOOST_AUTO_TEST_SUITE(DockerEndpointParsing)

BOOST_AUTO_TEST_CASE(UnixSocketPath) {
  auto ep = parseDockerHost("unix:///run/user/1000/docker.sock");
  BOOST_REQUIRE_MESSAGE(ep, ep.status().message());
  BOOST_TEST((ep->kind == DockerEndpoint::Kind::Unix));
  BOOST_TEST(ep->path == "/run/user/1000/docker.sock");
  BOOST_TEST(ep->toString() == "unix:///run/user/1000/docker.sock");
}

BOOST_AUTO_TEST_CASE(TcpHostAndPort) {
  auto ep = parseDockerHost("tcp://198.18.0.5:2375");
  BOOST_REQUIRE_MESSAGE(ep, ep.status().message());
  BOOST_TEST((ep->kind == DockerEndpoint::Kind::Tcp));
  BOOST_TEST(ep->host == "198.18.0.5");
  BOOST_TEST(ep->port == 2375);
  auto v6 = parseDockerHost("tcp://[::1]:2375/");
  BOOST_REQUIRE_MESSAGE(v6, v6.status().message());
  BOOST_TEST(v6->host == "::1");
  BOOST_TEST(v6->toString() == "tcp://[::1]:2375");
  BOOST_TEST(parseDockerHost("tcp://docker.example:2375")->host == "docker.example");
}

BOOST_AUTO_TEST_CASE(RejectsWhatWeCannotDial) {
  for (const char* bad : {"", "/var/run/docker.sock", "unix://", "unix://relative.sock",
                          "tcp://", "tcp://host", "tcp://host:", "tcp://host:0",
                          "tcp://host:65536", "tcp://host:12x", "tcp://:2375", "tcp://::1:2375",
                          "tcp://[::1]2375", "tcp://[::1", "ssh://me@host", "https://h:2376",
                          "npipe:////./pipe/docker_engine", "tcp://h:2375/path"}) {
    BOOST_TEST(!parseDockerHost(bad), "accepted '" << bad << "'");
  }
  BOOST_TEST(parseDockerHost("ssh://me@host").status().message().find("not supported") !=
             std::string::npos);
  BOOST_TEST(!parseDockerHost("unix:///" + std::string(200, 'a')));
}

BOOST_AUTO_TEST_CASE(FlagWinsOverEnvironmentWhichWinsOverDefault) {
  BOOST_TEST(chooseDockerEndpoint("unix:///flag.sock", "unix:///env.sock")->path == "/flag.sock");
  BOOST_TEST(chooseDockerEndpoint("", "unix:///env.sock")->path == "/env.sock");
  BOOST_TEST(chooseDockerEndpoint("", "")->path == "/var/run/docker.sock");
  BOOST_TEST(chooseDockerEndpoint("", nullptr)->path == "/var/run/docker.sock");
  auto bad = chooseDockerEndpoint("", "bogus");
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.status().message().find("DOCKER_HOST") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(ADaemonTheUserExpectsTlsWithIsRefusedNotSpokenToInPlainHttp) {
  // The call the injector makes: DOCKER_HOST passed in, the TLS variables read here.
  ScopedEnv verify("DOCKER_TLS_VERIFY", "1");
  ScopedEnv tls("DOCKER_TLS", std::nullopt);
  ScopedEnv certs("DOCKER_CERT_PATH", std::nullopt);
  auto ep = chooseDockerEndpoint("", "tcp://198.18.0.5:2376");
  BOOST_REQUIRE_MESSAGE(!ep, "accepted " << ep->toString());
  const std::string why = ep.status().message();
  BOOST_TEST(contains(why, "DOCKER_TLS_VERIFY is set but connectable does not speak TLS to the Docker daemon"), why);
  BOOST_TEST(contains(why, "tcp://198.18.0.5:2376"), why);
  BOOST_TEST(contains(why, "use a unix socket or a TLS-terminating proxy"), why);
}

BOOST_AUTO_TEST_CASE(EveryVariableThatAsksForTlsRefusesATcpEndpointAndIsNamed) {
  DockerEnvironment verify, tls, certs;
  verify.tlsVerify = "0";  // as for the docker CLI, any value at all turns verification on
  tls.tls = "1";
  certs.certPath = "/root/.docker";
  for (auto [env, name] : {std::pair{verify, "DOCKER_TLS_VERIFY"}, {tls, "DOCKER_TLS"}, {certs, "DOCKER_CERT_PATH"}}) {
    env.host = "tcp://198.18.0.5:2376";
    auto fromEnv = chooseDockerEndpoint("", env);
    BOOST_REQUIRE(!fromEnv);
    BOOST_TEST(contains(fromEnv.status().message(), std::string(name) + " is set but"), fromEnv.status().message());
    // --docker tcp:// is no way around it: the environment still says TLS is expected.
    auto fromFlag = chooseDockerEndpoint("tcp://[::1]:2375", env);
    BOOST_REQUIRE(!fromFlag);
    BOOST_TEST(contains(fromFlag.status().message(), "tcp://[::1]:2375"), fromFlag.status().message());
  }
}

BOOST_AUTO_TEST_CASE(EmptyTlsVariablesAreUnset) {
  DockerEnvironment env;
  env.host = "tcp://198.18.0.5:2375";
  env.tlsVerify = env.tls = env.certPath = "";
  auto ep = chooseDockerEndpoint("", env);
  BOOST_REQUIRE_MESSAGE(ep, ep.status().message());
  BOOST_TEST(ep->port == 2375);
}

BOOST_AUTO_TEST_CASE(AUnixSocketIsUsedWhateverTheTlsVariablesSay) {
  // Local, so nothing crosses a network: the variables are for the tcp:// daemons.
  DockerEnvironment env;
  env.tlsVerify = "1";
  env.certPath = "/root/.docker";
  BOOST_TEST(chooseDockerEndpoint("", env)->path == "/var/run/docker.sock");
  env.host = "unix:///run/user/1000/docker.sock";
  BOOST_TEST(chooseDockerEndpoint("", env)->path == "/run/user/1000/docker.sock");
  BOOST_TEST(chooseDockerEndpoint("unix:///flag.sock", env)->path == "/flag.sock");
}

BOOST_AUTO_TEST_CASE(ABadDockerHostIsReportedAsSuchEvenWithTlsVariablesSet) {
  DockerEnvironment env;
  env.host = "bogus";
  env.tlsVerify = "1";
  auto ep = chooseDockerEndpoint("", env);
  BOOST_REQUIRE(!ep);
  BOOST_TEST(contains(ep.status().message(), "DOCKER_HOST"), ep.status().message());
}

BOOST_AUTO_TEST_CASE(TheContextDockerContextNamesIsFollowed) {
  CliConfig cli;
  cli.context(kRootlessSha, "rootless", "unix:///run/user/1000/docker.sock");
  DockerEnvironment env = cli.env();
  env.context = "rootless";
  auto ep = chooseDockerEndpoint("", env);
  BOOST_REQUIRE_MESSAGE(ep, ep.status().message());
  BOOST_TEST(ep->path == "/run/user/1000/docker.sock");
}

BOOST_AUTO_TEST_CASE(TheContextDockerContextUseChoseIsFollowed) {
  CliConfig cli;
  cli.context(kRootlessSha, "rootless", "unix:///run/user/1000/docker.sock");
  cli.write("config.json", R"({"auths":{},"currentContext":"rootless"})");
  auto ep = chooseDockerEndpoint("", cli.env());
  BOOST_REQUIRE_MESSAGE(ep, ep.status().message());
  BOOST_TEST(ep->path == "/run/user/1000/docker.sock");
}

BOOST_AUTO_TEST_CASE(TheFlagAndDockerHostWinOverAnyContextAndDockerContextOverTheCurrentOne) {
  CliConfig cli;
  cli.context(kRootlessSha, "rootless", "unix:///run/user/1000/docker.sock");
  cli.context(kRemoteSha, "remote", "unix:///remote.sock");
  cli.write("config.json", R"({"currentContext":"remote"})");
  DockerEnvironment env = cli.env();
  env.context = "rootless";
  BOOST_TEST(chooseDockerEndpoint("unix:///flag.sock", env)->path == "/flag.sock");
  BOOST_TEST(chooseDockerEndpoint("", env)->path == "/run/user/1000/docker.sock");
  env.host = "unix:///env.sock";
  BOOST_TEST(chooseDockerEndpoint("", env)->path == "/env.sock");
}

BOOST_AUTO_TEST_CASE(TheDefaultContextAndNoConfigAtAllAreTheDefaultSocket) {
  CliConfig cli;
  BOOST_TEST(chooseDockerEndpoint("", cli.env())->path == "/var/run/docker.sock");  // no config.json
  cli.write("config.json", R"({"currentContext":"default"})");
  BOOST_TEST(chooseDockerEndpoint("", cli.env())->path == "/var/run/docker.sock");
  DockerEnvironment env = cli.env();
  env.context = "default";
  BOOST_TEST(chooseDockerEndpoint("", env)->path == "/var/run/docker.sock");
}

BOOST_AUTO_TEST_CASE(AContextThatIsNotThereIsAnErrorNamingIt) {
  // Not the default socket in its place: that may be another daemon than the user meant.
  CliConfig cli;
  DockerEnvironment env = cli.env();
  env.context = "rootless";
  auto ep = chooseDockerEndpoint("", env);
  BOOST_REQUIRE(!ep);
  BOOST_TEST(contains(ep.status().message(), "Docker context 'rootless' (DOCKER_CONTEXT) not found"), ep.status().message());
}

BOOST_AUTO_TEST_CASE(ABrokenCliConfigIsPassedOverWithAWarningAsTheCliDoes) {
  // Root's config.json, broken by hand or by some tool, must not keep the injector down.
  CliConfig cli;
  cli.write("config.json", R"({"currentContext":)");
  std::vector<std::string> warnings;
  auto ep = chooseDockerEndpoint("", cli.env(), &warnings);
  BOOST_REQUIRE_MESSAGE(ep, ep.status().message());
  BOOST_TEST(ep->path == "/var/run/docker.sock");
  BOOST_REQUIRE(warnings.size() == 1u);
  BOOST_TEST(contains(warnings[0], cli.dir + "/config.json"), warnings[0]);
}

BOOST_AUTO_TEST_CASE(AContextThatIsNamedButBrokenIsAnErrorNamingIt) {
  CliConfig cli;
  std::vector<std::string> warnings;
  Result<DockerEndpoint> ep = Status::error("not chosen yet");
  cli.write("config.json", R"({"currentContext":"rootless"})");
  cli.write("contexts/meta/" + kRootlessSha + "/meta.json", R"({"Name":"rootless","Endpoints":{"docker":{"Host":42}}})");
  ep = chooseDockerEndpoint("", cli.env(), &warnings);
  BOOST_REQUIRE(!ep);
  BOOST_TEST(contains(ep.status().message(), "Docker context 'rootless' (the current context in"), ep.status().message());
  BOOST_TEST(contains(ep.status().message(), "Host"), ep.status().message());
  cli.context(kRootlessSha, "rootless", "ssh://admin@198.18.0.5");
  ep = chooseDockerEndpoint("", cli.env());
  BOOST_REQUIRE(!ep);
  BOOST_TEST(contains(ep.status().message(), "ssh://"), ep.status().message());
}

BOOST_AUTO_TEST_CASE(AContextTheCliReachesWithTlsIsRefused) {
  CliConfig cli;
  cli.context(kRemoteSha, "remote", "tcp://198.18.0.5:2376");
  DockerEnvironment env = cli.env();
  env.context = "remote";
  auto plain = chooseDockerEndpoint("", env);  // no TLS files: plain HTTP, as the CLI does
  BOOST_REQUIRE_MESSAGE(plain, plain.status().message());
  BOOST_TEST(plain->port == 2376);
  cli.write("contexts/tls/" + kRemoteSha + "/docker/ca.pem", "-----BEGIN CERTIFICATE-----");
  auto tls = chooseDockerEndpoint("", env);
  BOOST_REQUIRE(!tls);
  BOOST_TEST(contains(tls.status().message(), "Docker context 'remote' (DOCKER_CONTEXT) reaches tcp://198.18.0.5:2376 with TLS"),
             tls.status().message());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(DockerApiVersionNegotiation)

BOOST_AUTO_TEST_CASE(ParsesMajorDotMinor) {
  auto v = parseDockerApiVersion("1.41");
  BOOST_REQUIRE(v);
  BOOST_TEST(v->major == 1);
  BOOST_TEST(v->minor == 41);
  BOOST_TEST(v->pathPrefix() == "/v1.41");
  for (const char* bad : {"", "1", "1.", ".41", "v1.41", "1.41.0", "1.-4", "1.-0", "-0.41", "+1.41", "a.b", "1.41 "}) {
    BOOST_TEST(!parseDockerApiVersion(bad), "accepted '" << bad << "'");
  }
}

BOOST_AUTO_TEST_CASE(OlderDaemonGetsItsOwnVersion) {
  auto v = negotiateDockerApiVersion({1, 41}, nullptr);
  BOOST_REQUIRE(v);
  BOOST_TEST(v->toString() == "1.41");
}

BOOST_AUTO_TEST_CASE(NewerDaemonGetsTheNewestWeKnow) {
  DockerApiVersion min{1, 24};
  auto v = negotiateDockerApiVersion({1, 55}, &min);
  BOOST_REQUIRE(v);
  BOOST_TEST((*v == kNewestKnownDockerApi));
  auto two = negotiateDockerApiVersion({2, 0}, nullptr);
  BOOST_REQUIRE(two);
  BOOST_TEST((*two == kNewestKnownDockerApi));
}

BOOST_AUTO_TEST_CASE(Docker29IsSpokenToInTheNewestVersionWeKnow) {
  DockerApiVersion min{1, 44};  // Docker 29: API 1.52, oldest 1.44
  auto v = negotiateDockerApiVersion({1, 52}, &min);
  BOOST_REQUIRE_MESSAGE(v, v.status().message());
  BOOST_TEST(v->toString() == "1.52");
}

BOOST_AUTO_TEST_CASE(ADaemonThatDroppedOurNewestIsSpokenToInItsOldest) {
  DockerApiVersion min{1, 55};
  auto v = negotiateDockerApiVersion({1, 60}, &min);
  BOOST_REQUIRE_MESSAGE(v, v.status().message());
  BOOST_TEST(v->toString() == "1.55");
}

BOOST_AUTO_TEST_CASE(RefusesTooOldDaemons) {
  BOOST_TEST(!negotiateDockerApiVersion({1, 23}, nullptr));
  DockerApiVersion min{1, 12};
  BOOST_TEST(!negotiateDockerApiVersion({1, 23}, &min));
}

BOOST_AUTO_TEST_CASE(EventsPathFiltersContainerAndNetworkAndReplaysFromSince) {
  BOOST_TEST(dockerEventsPath({1, 41}) ==
             "/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%2C%22network%22%5D%7D");
  BOOST_TEST(dockerEventsPath({1, 41}, 1796024645000000042LL).find("&since=1796024645.000000042") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(ContainerRefsAreSafeInAPath) {
  BOOST_TEST(validContainerRef("39a04bc1437d"));
  BOOST_TEST(validContainerRef("my_app-1.2"));
  BOOST_TEST(!validContainerRef(""));
  BOOST_TEST(!validContainerRef("../../version"));
  BOOST_TEST(!validContainerRef("a b"));
  BOOST_TEST(!validContainerRef("a?x=1"));
  BOOST_TEST(!validContainerRef(std::string(129, 'a')));
}

BOOST_AUTO_TEST_SUITE_END()
