// DockerJson: typed reads of Docker's JSON replies (and of the shims' answers and the state
// dir's records the injector reads) that return Status instead of throwing, so POCO's
// exceptions stop here. Internal to the injector. Stateless; any thread.
#pragma once

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace connectable::docker_json {

using ObjectPtr = Poco::JSON::Object::Ptr;
using ArrayPtr = Poco::JSON::Array::Ptr;

// Text whose parsed form would take more than kMaxParsedBytes of memory is refused before
// it is parsed (see parsedBytesEstimate).
Result<ObjectPtr> parseObject(std::string_view text);
Result<ArrayPtr> parseArray(std::string_view text);

// What POCO's parsed tree of `text` takes at most, in bytes, from one pass over its
// structure. Why: the tree costs far more than the text, and unevenly: about 860 bytes
// per object (`{}` takes 3 bytes of text), 130 per array, 30-110 per value, against 17
// bytes per byte of a real container list. So a size limit on Docker's replies alone
// does not bound our memory: 16 MiB of `[{},{},...]` would take 4.6 GiB.
size_t parsedBytesEstimate(std::string_view text);
// A container list of some twenty thousand containers fits.
inline constexpr size_t kMaxParsedBytes = size_t{256} << 20;

// A missing or null member leaves *out untouched and is an error only when `required`;
// a member of another type is always an error naming the key.
enum class Need { Optional, Required };
Status readString(const ObjectPtr& obj, const std::string& key, std::string* out, Need need);
Status readInt(const ObjectPtr& obj, const std::string& key, int64_t* out, Need need);
Status readBool(const ObjectPtr& obj, const std::string& key, bool* out, Need need);
// *out becomes null when the member is missing or null (and optional).
Status readObject(const ObjectPtr& obj, const std::string& key, ObjectPtr* out, Need need);
// Docker's label and attribute maps: every value must be a string.
Status readStringMap(const ObjectPtr& obj, const std::string& key,
                     std::map<std::string, std::string>* out, Need need);
Status readStringArray(const ObjectPtr& obj, const std::string& key,
                       std::vector<std::string>* out, Need need);

}  // namespace connectable::docker_json
