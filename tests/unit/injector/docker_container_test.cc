#include "injector/docker_container.h"

#include <boost/test/unit_test.hpp>

using connectable::parseContainerInspect;
using connectable::parseContainerList;

namespace {
// Trimmed from a real Docker 20.10 reply.
const char* kInspect = R"({
  "Id": "39a04bc1437d",
  "Created": "2026-11-30T07:43:53.748299004Z",
  "Path": "sleep", "Args": ["30"],
  "State": {"Status": "running", "Running": true, "Paused": false, "Pid": 16201,
            "ExitCode": 0, "StartedAt": "2026-11-30T07:43:54.219558043Z",
            "FinishedAt": "0001-01-01T00:00:00Z"},
  "Name": "/cantest",
  "ExecIDs": null,
  "HostConfig": {"Binds": null, "NetworkMode": "default", "ConsoleSize": [0, 0]},
  "Config": {"Hostname": "39a04bc1437d", "Labels": {"connect.6000": "x.y"}},
  "NetworkSettings": {"SandboxKey": "/var/run/docker/netns/4e4ff14f226a", "Ports": {}}
})";

std::string inspectError(const std::string& json) {
  auto r = parseContainerInspect(json);
  BOOST_REQUIRE_MESSAGE(!r, "expected rejection of " << json);
  return r.status().message();
}
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

BOOST_AUTO_TEST_SUITE(DockerContainerParsing)

BOOST_AUTO_TEST_CASE(InspectGivesTheFieldsTheInjectorNeeds) {
  auto c = parseContainerInspect(kInspect);
  BOOST_REQUIRE_MESSAGE(c, c.status().message());
  BOOST_TEST(c->id == "39a04bc1437d");
  BOOST_TEST(c->name == "cantest");
  BOOST_TEST(c->labels.at("connect.6000") == "x.y");
  BOOST_TEST(c->running);
  BOOST_TEST(c->pid == 16201);
  BOOST_TEST(c->startedAt == "2026-11-30T07:43:54.219558043Z");
  BOOST_TEST(c->networkMode == "default");
  BOOST_TEST(!c->hostNetwork());
  BOOST_TEST(c->sandboxKey == "/var/run/docker/netns/4e4ff14f226a");
}

BOOST_AUTO_TEST_CASE(InspectToleratesMissingOptionalParts) {
  auto c = parseContainerInspect(
      R"({"Id":"ab","State":{"Running":false,"Pid":0},"Config":{"Labels":null},"HostConfig":null})");
  BOOST_REQUIRE_MESSAGE(c, c.status().message());
  BOOST_TEST(c->labels.empty());
  BOOST_TEST(!c->running);
  BOOST_TEST(c->pid == 0);
  BOOST_TEST(c->networkMode.empty());
  BOOST_TEST(c->sandboxKey.empty());
  BOOST_TEST(c->name.empty());
}

BOOST_AUTO_TEST_CASE(InspectRejectsBrokenReplies) {
  BOOST_TEST(has(inspectError("garbage"), "bad JSON"));
  BOOST_TEST(has(inspectError("[]"), "object"));
  BOOST_TEST(has(inspectError(R"({"State":{"Running":true,"Pid":1}})"), "'Id'"));
  BOOST_TEST(has(inspectError(R"({"Id":"ab"})"), "'State'"));
  BOOST_TEST(has(inspectError(R"({"Id":"ab","State":"running"})"), "'State'"));
  BOOST_TEST(has(inspectError(R"({"Id":"ab","State":{"Running":"yes","Pid":1}})"), "Running"));
  BOOST_TEST(has(inspectError(R"({"Id":"ab","State":{"Running":true,"Pid":"1"}})"), "Pid"));
  BOOST_TEST(has(inspectError(R"({"Id":"ab","State":{"Running":true,"Pid":-4}})"), "Pid"));
  BOOST_TEST(has(inspectError(R"({"Id":"ab","State":{"Running":true,"Pid":99999999999}})"),
                 "Pid"));
  BOOST_TEST(has(inspectError(R"({"Id":"ab","State":{"Running":true,"Pid":0}})"), "Pid"));
  BOOST_TEST(has(inspectError(
                     R"({"Id":"ab","State":{"Running":true,"Pid":1},"Config":{"Labels":{"a":1}}})"),
                 "Labels.a"));
  BOOST_TEST(has(inspectError(
                     R"({"Id":"ab","State":{"Running":true,"Pid":1},"NetworkSettings":{"SandboxKey":3}})"),
                 "SandboxKey"));
  BOOST_TEST(has(inspectError(R"({"Id":"","State":{"Running":false,"Pid":0}})"), "empty Id"));
}

BOOST_AUTO_TEST_CASE(InspectOfAContainerWaitingToRestartSaysItIsNotRunning) {
  // Docker's restart back-off: Running and Restarting, no Pid, between two runs of a
  // --restart container. Not a broken reply; its next start event says when it runs.
  auto c = parseContainerInspect(
      R"({"Id":"abc","Name":"/app","State":{"Running":true,"Restarting":true,"Pid":0},"Config":{"Labels":{}}})");
  BOOST_REQUIRE_MESSAGE(c, c.status().message());
  BOOST_TEST(!c->running);
  BOOST_TEST(c->pid == 0);
  // Running with no Pid and not restarting is still a reply that makes no sense.
  BOOST_TEST(has(inspectError(R"({"Id":"ab","State":{"Running":true,"Restarting":false,"Pid":0}})"), "Pid"));
}

BOOST_AUTO_TEST_CASE(ListGivesLabelsStateAndNetworkMode) {
  auto all = parseContainerList(R"([
    {"Id":"39a0","Names":["/cantest"],"Labels":{"connect.6000":"x.y"},"State":"running",
     "HostConfig":{"NetworkMode":"none"},"Ports":[]},
    {"Id":"77aa","Names":null,"Labels":null}
  ])");
  BOOST_REQUIRE_MESSAGE(all, all.status().message());
  BOOST_TEST(all->skipped.empty());
  const auto* list = &all->containers;
  BOOST_REQUIRE_EQUAL(list->size(), 2u);
  const auto& a = (*list)[0];
  BOOST_TEST(a.id == "39a0");
  BOOST_TEST(a.names.at(0) == "/cantest");
  BOOST_TEST(a.labels.at("connect.6000") == "x.y");
  BOOST_TEST(a.state == "running");
  BOOST_TEST(a.networkMode == "none");
  BOOST_TEST((*list)[1].labels.empty());
  BOOST_TEST((*list)[1].names.empty());
  auto empty = parseContainerList("[]");
  BOOST_REQUIRE(empty);
  BOOST_TEST(empty->containers.empty());
}

BOOST_AUTO_TEST_CASE(ListNamesAContainerByItsOwnNameNotALinksAlias) {
  auto r = parseContainerList(R"([{"Id":"a","Names":["/app/db","/zdb"]},{"Id":"b","Names":["/web"]},
                                  {"Id":"c","Names":[]},{"Id":"d"}])");
  BOOST_REQUIRE_MESSAGE(r, r.status().message());
  BOOST_REQUIRE_EQUAL(r->containers.size(), 4u);
  BOOST_TEST(r->containers[0].name() == "zdb");
  BOOST_TEST(r->containers[1].name() == "web");
  BOOST_TEST(r->containers[2].name() == "");
  BOOST_TEST(r->containers[3].name() == "");
}

BOOST_AUTO_TEST_CASE(ListRejectsAReplyThatIsNoArray) {
  BOOST_TEST(!parseContainerList("{}"));
  BOOST_TEST(!parseContainerList("garbage"));
}

BOOST_AUTO_TEST_CASE(ListSkipsBadEntriesNamingThemAndKeepsTheRest) {
  // One odd container must not hide the others from reconcile.
  auto r = parseContainerList(
      R"([{"Id":"a"},{"Id":"b","Names":[3]},{"Id":"c","Labels":{"k":1}},1,{"Names":["/x"]},{"Id":"d"}])");
  BOOST_REQUIRE_MESSAGE(r, r.status().message());
  BOOST_REQUIRE_EQUAL(r->containers.size(), 2u);
  BOOST_TEST(r->containers[0].id == "a");
  BOOST_TEST(r->containers[1].id == "d");
  BOOST_REQUIRE_EQUAL(r->skipped.size(), 4u);
  BOOST_TEST(r->skipped[0].id == "b");
  BOOST_TEST(has(r->skipped[0].why.message(), "entry 1"));
  BOOST_TEST(has(r->skipped[0].why.message(), "Names[0]"));
  BOOST_TEST(r->skipped[1].id == "c");
  BOOST_TEST(has(r->skipped[1].why.message(), "Labels.k"));
  BOOST_TEST(r->skipped[2].id.empty());
  BOOST_TEST(has(r->skipped[2].why.message(), "entry 3 is not an object"));
  BOOST_TEST(r->skipped[3].id.empty());
  BOOST_TEST(has(r->skipped[3].why.message(), "'Id'"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ContainerNames)

BOOST_AUTO_TEST_CASE(LogsAndStatusShowNameAndShortId) {
  const std::string id = "8f3c11155b1b2f0e6a7d4c3b2a19080706050403020100ffeeddccbbaa998877";
  BOOST_TEST(connectable::shortContainerId(id) == "8f3c11155b1b");
  BOOST_TEST(connectable::containerDisplayName("app", id) == "app (8f3c11155b1b)");
  BOOST_TEST(connectable::containerDisplayName("", id) == "? (8f3c11155b1b)");
}

BOOST_AUTO_TEST_SUITE_END()
