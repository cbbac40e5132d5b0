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
