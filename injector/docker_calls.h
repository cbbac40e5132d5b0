// DockerCalls: the injector's Docker API requests (version, list, inspect), made on a worker
// thread so that a slow or stuck daemon never holds the event loop: while a request waits,
// signals, metrics, shim restarts and the early injection path go on. Requests run one at a
// time, in the order asked; each result is handed to its callback on the loop's thread.
// A request that takes longer than the deadline in all (a daemon that trickles its answer a
// byte at a time never trips a socket timeout) is cut, and fails.
//
// Construct, call and destroy on the loop's thread. After destruction or abandon(), no
// callback runs.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "common/event_loop.h"
#include "common/status.h"
#include "injector/docker_client.h"

namespace connectable {

class DockerCalls : private IoHandler {
 public:
  struct Options {
    DockerClient::Options client;
    Millis deadline{60000};  // one request, from being sent to its last byte
  };
  struct Negotiated {
    DockerApiVersion api;
    std::string server;  // "20.10.24+dfsg1"
  };
  struct Inspected {
    Result<ContainerInfo> info = Status::error("not inspected");
    bool notFound = false;  // a 404: the container is gone, no failure to report
  };

  DockerCalls(EventLoop& loop, DockerEndpoint endpoint, Options options);
  ~DockerCalls() override;  // cuts the request under way and joins the worker
  DockerCalls(const DockerCalls&) = delete;
  DockerCalls& operator=(const DockerCalls&) = delete;

  // Registers with the loop and starts the worker. REQUIRES: called once, before any call.
  Status start();

  void negotiate(std::function<void(Result<Negotiated>)> done);
  // REQUIRES: a negotiate() before it succeeded (the worker's client keeps its version).
  void listContainers(std::function<void(Result<ContainerList>)> done);
  // Stopped and created containers too. REQUIRES: as for listContainers.
  void listAllContainers(std::function<void(Result<ContainerList>)> done);
  void inspectContainer(const std::string& id, std::function<void(Inspected)> done);
  // The daemon's ID (DockerClient::daemonId). REQUIRES: as for listContainers.
  void daemonId(std::function<void(Result<std::string>)> done);

  // For process exit: no callback runs any more, the request under way is cut, and the
  // worker is not waited for (it may sit in a connect() to a swamped daemon). The caller
  // must then leak this object, which the worker may still touch.
  void abandon();

 private:
  // Runs on the worker; returns what to run on the loop's thread.
  using Work = std::function<std::function<void()>(DockerClient&)>;
  struct Job {
    uint64_t seq = 0;
    Work work;
  };

  void submit(Work work);
  void workerMain();
  void onIo(uint32_t events) override;  // the eventfd: results are ready
  void armWatchdog();
  void onWatchdog();

  EventLoop& loop_;
  DockerClient client_;  // the worker's only
  Options options_;
  int eventFd_ = -1;
  std::thread worker_;

  std::mutex mutex_;  // guards everything below up to the loop-only fields
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::deque<std::function<void()>> done_;
  uint64_t running_ = 0;  // seq of the request under way, 0 if none
  Clock::time_point runningSince_;
  bool stopping_ = false;

  // Loop thread only.
  uint64_t nextSeq_ = 1;
  size_t outstanding_ = 0;  // requests whose callback has not run yet: the watchdog runs while any are
  EventLoop::TimerId watchdog_ = 0;
  bool abandoned_ = false;
};

}  // namespace connectable
