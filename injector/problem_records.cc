#include "injector/problem_records.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <Poco/Exception.h>

#include <cerrno>
#include <fstream>
#include <iterator>

#include "common/log.h"
#include "injector/docker_container.h"
#include "injector/docker_json.h"
#include "injector/shim_supervisor.h"

namespace connectable {

namespace {

std::vector<std::string> recordIds(const std::string& dir) {
  std::vector<std::string> ids;
  DIR* d = opendir(dir.c_str());
  if (!d) return ids;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() == 69 && name.compare(64, 5, ".json") == 0 && isContainerId(name.substr(0, 64)))
      ids.push_back(name.substr(0, 64));
  }
  closedir(d);
  return ids;
}

}  // namespace

Status ProblemRecords::init() {
  if (mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) return errnoStatus("creating " + dir_, errno);
  return checkPrivateDir(dir_);
}

void ProblemRecords::set(const ProblemRecord& record) {
  if (!isContainerId(record.containerId)) return;
  if (record.problems.empty()) {
    remove(record.containerId);
    return;
  }
  std::string json = "{\"container_id\":\"" + record.containerId + "\",\"container_name\":\"" +
                     log::jsonEscape(record.containerName) + "\",\"problems\":[";
  for (size_t i = 0; i < record.problems.size(); ++i)
    json += (i ? ",\"" : "\"") + log::jsonEscape(record.problems[i]) + "\"";
  json += "]}\n";
  // Not written, status shows less; the log said it all already.
  (void)replaceStateFile(dir_ + "/" + record.containerId + ".json", json);
}

void ProblemRecords::remove(const std::string& containerId) {
  if (isContainerId(containerId)) ::unlink((dir_ + "/" + containerId + ".json").c_str());
}

std::vector<std::string> ProblemRecords::containerIds() const { return recordIds(dir_); }

std::vector<ProblemRecord> readProblemRecords(const std::string& stateDir) {
  std::vector<ProblemRecord> records;
  const std::string dir = stateDir + "/problems";
  for (const auto& id : recordIds(dir)) {
    std::ifstream in(dir + "/" + id + ".json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto obj = docker_json::parseObject(text);
    if (!obj) continue;  // being replaced, or gone: the injector owns these records
    try {
      ProblemRecord r;
      r.containerId = id;
      r.containerName = (*obj)->getValue<std::string>("container_name");
      auto problems = (*obj)->getArray("problems");
      for (size_t i = 0; problems && i < problems->size(); ++i)
        r.problems.push_back(problems->getElement<std::string>(static_cast<unsigned>(i)));
      records.push_back(std::move(r));
    } catch (const Poco::Exception&) {  // a field missing or of another type
    } catch (const std::exception&) {
    }
  }
  return records;
}

}  // namespace connectable
