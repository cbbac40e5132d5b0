#include "injector/docker_json.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>

#include <exception>
#include <limits>
#include <typeinfo>

#include "common/utf8.h"

namespace connectable::docker_json {
namespace {

using Poco::Dynamic::Var;

Result<Var> parse(std::string_view text) {
  // JSON is UTF-8 (RFC 8259), and POCO's parser takes a 0xff byte for the end of its
  // input, leaving whatever follows unread: such text is refused before it gets there.
  if (!isUtf8(text)) return Status::error("bad JSON: not UTF-8");
  if (const size_t estimate = parsedBytesEstimate(text); estimate > kMaxParsedBytes) {
    return Status::error("JSON too large to read: " + std::to_string(text.size()) + " bytes that would take about " +
                         std::to_string(estimate >> 20) + " MiB once parsed, more than the " +
                         std::to_string(kMaxParsedBytes >> 20) + " MiB allowed");
  }
  try {
    Poco::JSON::Parser parser;
    return parser.parse(std::string(text));
  } catch (const Poco::Exception& e) {
    return Status::error("bad JSON: " + e.displayText());
  } catch (const std::exception& e) {
    return Status::error(std::string("bad JSON: ") + e.what());
  }
}

bool isObject(const Var& v) { return v.type() == typeid(ObjectPtr); }
bool isArray(const Var& v) { return v.type() == typeid(ArrayPtr); }

Status wrongType(const std::string& key, const char* expected) {
  return Status::error("field '" + key + "' is not " + expected);
}

// Returns the member, or an empty Var when missing or null.
Var member(const ObjectPtr& obj, const std::string& key) {
  if (obj.isNull() || !obj->has(key)) return Var();
  return obj->get(key);
}

Status absent(const std::string& key, Need need) {
  return need == Need::Required ? Status::error("missing field '" + key + "'") : Status::ok();
}

}  // namespace

size_t parsedBytesEstimate(std::string_view text) {
  // Measured on POCO 1.11 (64-bit), rounded up: an object with its map, an array with
  // its vector, and each member or element (its Var, and a member's key and map node).
  // Strings are counted by their bytes in the text, which is at least what they keep.
  constexpr size_t kObject = 900, kArray = 160, kValue = 128;
  size_t objects = 0, arrays = 0, commas = 0;
  bool inString = false, escaped = false;
  for (const char ch : text) {
    if (inString) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        inString = false;
      }
      continue;
    }
    switch (ch) {
      case '"': inString = true; break;
      case '{': ++objects; break;
      case '[': ++arrays; break;
      case ',': ++commas; break;
      default: break;
    }
  }
  // A container of n values holds n - 1 commas: one value more than its commas each.
  const size_t values = commas + objects + arrays + 1;
  return text.size() + objects * kObject + arrays * kArray + values * kValue;
}

Result<ObjectPtr> parseObject(std::string_view text) {
  auto v = parse(text);
  if (!v) return v.status();
  if (!isObject(*v)) return Status::error("expected a JSON object");
  return v->extract<ObjectPtr>();
}

Result<ArrayPtr> parseArray(std::string_view text) {
  auto v = parse(text);
  if (!v) return v.status();
  if (!isArray(*v)) return Status::error("expected a JSON array");
  return v->extract<ArrayPtr>();
}

Status readString(const ObjectPtr& obj, const std::string& key, std::string* out, Need need) {
  Var v = member(obj, key);
  if (v.isEmpty()) return absent(key, need);
  if (!v.isString()) return wrongType(key, "a string");
  *out = v.extract<std::string>();
  return Status::ok();
}

Status readInt(const ObjectPtr& obj, const std::string& key, int64_t* out, Need need) {
  Var v = member(obj, key);
  if (v.isEmpty()) return absent(key, need);
  if (v.type() == typeid(bool) || !v.isInteger()) return wrongType(key, "an integer");
  try {
    *out = v.convert<Poco::Int64>();
  } catch (const Poco::Exception&) {  // an unsigned value above INT64_MAX
    return wrongType(key, "an integer in range");
  }
  return Status::ok();
}

Status readBool(const ObjectPtr& obj, const std::string& key, bool* out, Need need) {
  Var v = member(obj, key);
  if (v.isEmpty()) return absent(key, need);
  if (v.type() != typeid(bool)) return wrongType(key, "a boolean");
  *out = v.extract<bool>();
  return Status::ok();
}

Status readObject(const ObjectPtr& obj, const std::string& key, ObjectPtr* out, Need need) {
  Var v = member(obj, key);
  *out = ObjectPtr();
  if (v.isEmpty()) return absent(key, need);
  if (!isObject(v)) return wrongType(key, "an object");
  *out = v.extract<ObjectPtr>();
  return Status::ok();
}

Status readStringMap(const ObjectPtr& obj, const std::string& key,
                     std::map<std::string, std::string>* out, Need need) {
  ObjectPtr m;
  if (Status s = readObject(obj, key, &m, need); !s) return s;
  out->clear();
  if (m.isNull()) return Status::ok();
  for (const auto& [name, value] : *m) {
    if (!value.isString()) return wrongType(key + "." + name, "a string");
    (*out)[name] = value.extract<std::string>();
  }
  return Status::ok();
}

Status readStringArray(const ObjectPtr& obj, const std::string& key,
                       std::vector<std::string>* out, Need need) {
  Var v = member(obj, key);
  out->clear();
  if (v.isEmpty()) return absent(key, need);
  if (!isArray(v)) return wrongType(key, "an array");
  const ArrayPtr& a = v.extract<ArrayPtr>();
  for (size_t i = 0; i < a->size(); ++i) {
    Var item = a->get(static_cast<unsigned>(i));
    if (!item.isString()) return wrongType(key + "[" + std::to_string(i) + "]", "a string");
    out->push_back(item.extract<std::string>());
  }
  return Status::ok();
}

}  // namespace connectable::docker_json
