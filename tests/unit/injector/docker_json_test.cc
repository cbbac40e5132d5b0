#include "injector/docker_json.h"

#include <malloc.h>

#include <boost/test/unit_test.hpp>
#include <string>

namespace docker_json = connectable::docker_json;

namespace {

// `count` copies of `element` in a JSON array.
std::string arrayOf(const std::string& element, size_t count) {
  std::string text = "[";
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) text += ',';
    text += element;
  }
  return text + "]";
}

// One row of /containers/json as Docker 20.10 writes it, trimmed.
const std::string kListRow =
    R"({"Id":"39a04bc1437d0123456789abcdef0123456789abcdef0123456789abcdef","Names":["/web-1"],)"
    R"("Image":"busybox","State":"running","Status":"Up 2 hours","Created":1700000000,)"
    R"("Labels":{"connect.6000":"redis.service.consul","com.example.team":"payments"},)"
    R"("Ports":[{"PrivatePort":80,"Type":"tcp"}],"HostConfig":{"NetworkMode":"bridge"},)"
    R"("NetworkSettings":{"Networks":{"bridge":{"IPAddress":"172.17.0.2","Gateway":"172.17.0.1",)"
    R"("NetworkID":"a1b2","EndpointID":"c3d4","IPPrefixLen":16}}}})";

}  // namespace

BOOST_AUTO_TEST_SUITE(DockerJsonMemory)

BOOST_AUTO_TEST_CASE(AListOfThousandsOfContainersIsRead) {
  auto list = docker_json::parseArray(arrayOf(kListRow, 5000));
  BOOST_REQUIRE_MESSAGE(list, list.status().message());
  BOOST_TEST((*list)->size() == 5000u);
}

BOOST_AUTO_TEST_CASE(ALittleTextThatWouldTakeGigabytesOnceParsedIsRefusedUnparsed) {
  // 1.5 MiB of empty objects: about 450 MiB as POCO's tree. Refused with what it is and
  // what the limit is, before any of it is parsed.
  const std::string text = arrayOf("{}", 500'000);
  auto list = docker_json::parseArray(text);
  BOOST_REQUIRE(!list);
  const std::string message = list.status().message();
  BOOST_TEST(message.find("JSON too large to read: " + std::to_string(text.size()) + " bytes") != std::string::npos,
             message);
  BOOST_TEST(message.find("more than the 256 MiB allowed") != std::string::npos, message);
}

BOOST_AUTO_TEST_CASE(BracesAndCommasInsideStringsAreNotCounted) {
  const std::string plain = R"({"k":"abcdefghijklmnopqrstuvwxyzab"})";
  const std::string braces = R"({"k":"{[,{[,{[,\"{[,{[,{[,{[,{[,{["})";
  BOOST_REQUIRE(plain.size() == braces.size());
  BOOST_TEST(docker_json::parsedBytesEstimate(braces) == docker_json::parsedBytesEstimate(plain));
}

#if !defined(__SANITIZE_ADDRESS__)
// The estimate is what stands between a hostile reply and our memory: it must not fall
// below what parsing really takes, for any shape of text. (Under ASan the allocator is
// not glibc's, and mallinfo2 does not see it.)
BOOST_AUTO_TEST_CASE(TheEstimateIsNeverBelowWhatParsingTakes) {
  const std::pair<const char*, std::string> shapes[] = {
      {"empty objects", arrayOf("{}", 20'000)},
      {"empty arrays", arrayOf("[]", 20'000)},
      {"numbers", arrayOf("1", 20'000)},
      {"short strings", arrayOf(R"("")", 20'000)},
      {"long strings", arrayOf(R"("0123456789abcdef0123456789abcdef0123456789abcdef")", 20'000)},
      {"one-member objects", arrayOf(R"({"a":1})", 20'000)},
      {"nested arrays", arrayOf("[[[[1]]]]", 20'000)},
      {"container list rows", arrayOf(kListRow, 2'000)},
  };
  for (const auto& [name, text] : shapes) {
    const size_t before = mallinfo2().uordblks;
    auto parsed = docker_json::parseArray(text);
    const size_t after = mallinfo2().uordblks;
    BOOST_REQUIRE_MESSAGE(parsed, name << ": " << parsed.status().message());
    const size_t taken = after > before ? after - before : 0;
    const size_t estimate = docker_json::parsedBytesEstimate(text);
    BOOST_TEST_MESSAGE(name << ": " << text.size() << " bytes of text, " << taken << " bytes parsed, estimate "
                            << estimate);
    BOOST_TEST(estimate >= taken, name << ": estimate " << estimate << " < " << taken << " taken");
    // ... and not so far above it that real replies are refused for nothing.
    BOOST_TEST(estimate <= 4 * taken + 4096, name << ": estimate " << estimate << " for " << taken << " taken");
  }
}
#endif

BOOST_AUTO_TEST_SUITE_END()
