// ProblemRecords: what the injector could not do for a container (labels it ignored, a shim
// it could not start), kept in <state-dir>/problems/<container-id>.json so that
// `connectable status` shows it beside the container's shim, or in place of one.
// Runs on the injector's loop thread; each record is replaced whole (rename), never half.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace connectable {

struct ProblemRecord {
  std::string containerId, containerName;
  std::vector<std::string> problems;  // one line each, as the log said them
};

class ProblemRecords {
 public:
  explicit ProblemRecords(std::string stateDir) : dir_(std::move(stateDir) + "/problems") {}

  // Creates <state-dir>/problems. REQUIRES: the state dir exists and is ours alone.
  Status init();
  // Records the container's problems, or removes its record when there are none.
  void set(const ProblemRecord& record);
  void remove(const std::string& containerId);
  // The containers that have a record.
  std::vector<std::string> containerIds() const;

 private:
  std::string dir_;
};

// Every readable record in <state-dir>/problems; none when there is no such directory.
std::vector<ProblemRecord> readProblemRecords(const std::string& stateDir);

}  // namespace connectable
