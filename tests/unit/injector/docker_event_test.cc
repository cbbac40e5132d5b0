#include "injector/docker_event.h"

#include <boost/test/unit_test.hpp>

using connectable::parseDockerEvent;

namespace {
// Verbatim shapes from Docker 20.10 (API 1.41), ids shortened.
const char* kCreate =
    R"({"status":"create","id":"9abd","from":"busybox","Type":"container","Action":"create",)"
    R"("Actor":{"ID":"9abd","Attributes":{"connect.6000":"x.y","image":"busybox",)"
    R"("name":"practical_dijkstra"}},"scope":"local","time":1796024645,)"
    R"("timeNano":1796024645725264864})";
const char* kNetworkConnect =
    R"({"Type":"network","Action":"connect","Actor":{"ID":"c9aa","Attributes":)"
    R"({"container":"9abd","name":"none","type":"null"}},"scope":"local","time":1796024645,)"
    R"("timeNano":1796024645738463657})";

std::string errorOf(const std::string& line) {
  auto r = parseDockerEvent(line);
  BOOST_REQUIRE_MESSAGE(!r, "expected '" << line << "' to be rejected");
  return r.status().message();
}
}  // namespace

BOOST_AUTO_TEST_SUITE(DockerEventParsing)

BOOST_AUTO_TEST_CASE(ContainerEventCarriesLabelsAndName) {
  auto ev = parseDockerEvent(kCreate);
  BOOST_REQUIRE_MESSAGE(ev, ev.status().message());
  BOOST_TEST(ev->isContainer());
  BOOST_TEST(ev->action == "create");
  BOOST_TEST(ev->actorId == "9abd");
  BOOST_TEST(ev->containerId() == "9abd");
  BOOST_TEST(ev->attributes.at("connect.6000") == "x.y");
  BOOST_TEST(ev->attributes.at("name") == "practical_dijkstra");
  BOOST_TEST(ev->time == 1796024645);
  BOOST_TEST(ev->timeNano == 1796024645725264864LL);
}

BOOST_AUTO_TEST_CASE(NetworkEventNamesTheContainerInAttributes) {
  auto ev = parseDockerEvent(kNetworkConnect);
  BOOST_REQUIRE_MESSAGE(ev, ev.status().message());
  BOOST_TEST(ev->isNetwork());
  BOOST_TEST(ev->action == "connect");
  BOOST_TEST(ev->actorId == "c9aa");
  BOOST_TEST(ev->containerId() == "9abd");
}

BOOST_AUTO_TEST_CASE(MissingTimesAndAttributesAreTolerated) {
  auto ev = parseDockerEvent(R"({"Type":"container","Action":"die","Actor":{"ID":"ab"}})");
  BOOST_REQUIRE_MESSAGE(ev, ev.status().message());
  BOOST_TEST(ev->attributes.empty());
  BOOST_TEST(ev->timeNano == 0);
  BOOST_TEST(ev->nanos() == 0);
  auto secondsOnly =
      parseDockerEvent(R"({"Type":"container","Action":"die","Actor":{"ID":"ab"},"time":7})");
  BOOST_REQUIRE(secondsOnly);
  BOOST_TEST(secondsOnly->nanos() == 7'000'000'000LL);
}

BOOST_AUTO_TEST_CASE(NullAttributesAreEmpty) {
  auto ev = parseDockerEvent(
      R"({"Type":"container","Action":"die","Actor":{"ID":"ab","Attributes":null}})");
  BOOST_REQUIRE_MESSAGE(ev, ev.status().message());
  BOOST_TEST(ev->attributes.empty());
}

BOOST_AUTO_TEST_CASE(ActionWithDetailIsKeptWhole) {
  auto ev = parseDockerEvent(
      R"({"Type":"container","Action":"health_status: healthy","Actor":{"ID":"ab"}})");
  BOOST_REQUIRE(ev);
  BOOST_TEST(ev->action == "health_status: healthy");
}

BOOST_AUTO_TEST_CASE(MalformedLinesAreErrorsNotCrashes) {
  BOOST_TEST(errorOf("").find("bad JSON") != std::string::npos);
  BOOST_TEST(errorOf("not json").find("bad JSON") != std::string::npos);
  BOOST_TEST(errorOf(R"({"Type":"container","Action":"die","Actor":{"ID":"ab"})")
                 .find("bad JSON") != std::string::npos);  // truncated
  BOOST_TEST(errorOf("[1,2]").find("object") != std::string::npos);
  BOOST_TEST(!errorOf("null").empty());
  BOOST_TEST(errorOf("{}").find("Type") != std::string::npos);
  // The pre-1.22 format has no Type/Action/Actor.
  BOOST_TEST(errorOf(R"({"status":"die","id":"ab","from":"busybox","time":1})")
                 .find("Type") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(MistypedFieldsAreErrorsNamingTheField) {
  BOOST_TEST(errorOf(R"({"Type":1,"Action":"die","Actor":{"ID":"ab"}})").find("'Type'") !=
             std::string::npos);
  BOOST_TEST(errorOf(R"({"Type":"container","Action":"die","Actor":"ab"})").find("'Actor'") !=
             std::string::npos);
  BOOST_TEST(errorOf(R"({"Type":"container","Action":"die","Actor":{"ID":5}})").find("'ID'") !=
             std::string::npos);
  BOOST_TEST(errorOf(R"({"Type":"container","Action":"die","Actor":{"ID":"a","Attributes":[]}})")
                 .find("Attributes") != std::string::npos);
  BOOST_TEST(errorOf(R"({"Type":"container","Action":"die","Actor":{"ID":"a","Attributes":{"x":1}}})")
                 .find("Attributes.x") != std::string::npos);
  BOOST_TEST(errorOf(R"({"Type":"container","Action":"die","Actor":{"ID":"a"},"timeNano":"1"})")
                 .find("timeNano") != std::string::npos);
  BOOST_TEST(errorOf(R"({"Type":"container","Action":"die","Actor":{"ID":"a"},"time":true})")
                 .find("time") != std::string::npos);
  BOOST_TEST(errorOf(R"({"Type":"container","Action":"die","Actor":{"ID":"a"},"time":1.5})")
                 .find("time") != std::string::npos);
  BOOST_TEST(errorOf(R"({"Type":"","Action":"die","Actor":{"ID":"a"}})").find("empty") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(TimesBeforeTheEpochOrPastNanosecondRangeAreErrors) {
  // nanos() and a reconnect's `since` compute with them: they must fit in int64 ns.
  BOOST_TEST(errorOf(R"({"Type":"container","Action":"die","Actor":{"ID":"a"},"time":-1})")
                 .find("'time'") != std::string::npos);
  BOOST_TEST(errorOf(R"({"Type":"container","Action":"die","Actor":{"ID":"a"},"timeNano":-9223372036854775808})")
                 .find("'timeNano'") != std::string::npos);
  BOOST_TEST(errorOf(R"({"Type":"container","Action":"die","Actor":{"ID":"a"},"time":9223372037})")
                 .find("'time'") != std::string::npos);
  auto last = parseDockerEvent(R"({"Type":"container","Action":"die","Actor":{"ID":"a"},"time":9223372036})");
  BOOST_REQUIRE_MESSAGE(last, last.status().message());
  BOOST_TEST(last->nanos() == 9'223'372'036'000'000'000LL);
}

BOOST_AUTO_TEST_CASE(ALineThatIsNotUtf8IsAnErrorNotReadUpToItsFirstBadByte) {
  // POCO's parser takes a 0xff byte for the end of its input: what follows it would go
  // unread, a second event or half of one included.
  const std::string line = std::string(kCreate) + "\xff" + R"({"Type":"container","Action":"die"})";
  BOOST_TEST(errorOf(line).find("UTF-8") != std::string::npos);
  BOOST_TEST(errorOf(std::string(R"({"Type":"container","Action":"die","Actor":{"ID":"a)") + "\xc3(" + R"("}})")
                 .find("UTF-8") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(DeepOrHugeInputDoesNotCrash) {
  std::string deep(5000, '[');
  BOOST_TEST(!parseDockerEvent(deep));
  std::string big = R"({"Type":"container","Action":"die","Actor":{"ID":")" +
                    std::string(100000, 'a') + R"("},"time":99999999999999999999999})";
  BOOST_TEST(!parseDockerEvent(big));
}

BOOST_AUTO_TEST_SUITE_END()
