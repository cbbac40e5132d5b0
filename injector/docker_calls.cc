#include "injector/docker_calls.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <exception>

namespace connectable {
namespace {

// DockerClient reports failures as Status; this catches what it does not (bad_alloc), so
// the caller still hears that its request ended, and the worker lives on.
template <typename F>
auto guarded(const char* what, F&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const std::exception& e) {
    return Status::error(std::string(what) + ": " + e.what());
  }
}

}  // namespace

DockerCalls::DockerCalls(EventLoop& loop, DockerEndpoint endpoint, Options options)
    : loop_(loop), client_(std::move(endpoint), options.client), options_(options) {}

DockerCalls::~DockerCalls() {
  if (abandoned_) return;  // the owner leaks an abandoned object; never reached
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    if (running_ != 0) client_.interrupt();
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (watchdog_) loop_.cancelTimer(watchdog_);
  if (eventFd_ >= 0) {
    loop_.remove(eventFd_);
    ::close(eventFd_);
  }
}

Status DockerCalls::start() {
  eventFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (eventFd_ < 0) return errnoStatus("eventfd", errno);
  if (Status s = loop_.add(eventFd_, EPOLLIN, this); !s) {
    ::close(eventFd_);
    eventFd_ = -1;
    return s;
  }
  worker_ = std::thread([this] { workerMain(); });
  return Status::ok();
}

void DockerCalls::abandon() {
  if (abandoned_) return;
  abandoned_ = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    queue_.clear();
    if (running_ != 0) client_.interrupt();
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.detach();
  if (watchdog_) loop_.cancelTimer(watchdog_);
  watchdog_ = 0;
  if (eventFd_ >= 0) loop_.remove(eventFd_);  // the worker may still write to it
}

void DockerCalls::negotiate(std::function<void(Result<Negotiated>)> done) {
  submit([done = std::move(done)](DockerClient& client) -> std::function<void()> {
    Result<Negotiated> result = guarded("docker version", [&]() -> Result<Negotiated> {
      if (Status s = client.negotiate(); !s) return s;
      return Negotiated{client.apiVersion(), client.serverVersion()};
    });
    return [done, result = std::move(result)]() mutable { done(std::move(result)); };
  });
}

void DockerCalls::listContainers(std::function<void(Result<ContainerList>)> done) {
  submit([done = std::move(done)](DockerClient& client) -> std::function<void()> {
    auto list = guarded("listing containers", [&] { return client.listContainers(); });
    return [done, list = std::move(list)]() mutable { done(std::move(list)); };
  });
}

void DockerCalls::listAllContainers(std::function<void(Result<ContainerList>)> done) {
  submit([done = std::move(done)](DockerClient& client) -> std::function<void()> {
    auto list = guarded("listing all containers", [&] { return client.listContainers(true); });
    return [done, list = std::move(list)]() mutable { done(std::move(list)); };
  });
}

void DockerCalls::inspectContainer(const std::string& id, std::function<void(Inspected)> done) {
  submit([id, done = std::move(done)](DockerClient& client) -> std::function<void()> {
    Inspected result;
    result.info = guarded("inspecting a container", [&] { return client.inspectContainer(id, &result.notFound); });
    return [done, result = std::move(result)]() mutable { done(std::move(result)); };
  });
}

void DockerCalls::daemonId(std::function<void(Result<std::string>)> done) {
  submit([done = std::move(done)](DockerClient& client) -> std::function<void()> {
    auto id = guarded("docker info", [&] { return client.daemonId(); });
    return [done, id = std::move(id)]() mutable { done(std::move(id)); };
  });
}

void DockerCalls::submit(Work work) {
  if (abandoned_) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(Job{nextSeq_++, std::move(work)});
  }
  ++outstanding_;
  wake_.notify_one();
  armWatchdog();
}

void DockerCalls::workerMain() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      running_ = job.seq;
      runningSince_ = Clock::now();
      // Under the lock every interrupt() is made with: one from now on cuts this job.
      client_.clearInterrupt();
    }
    std::function<void()> then = job.work(client_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_ = 0;
      if (stopping_) return;
      done_.push_back(std::move(then));
    }
    uint64_t one = 1;
    // Only EAGAIN can fail here (counter at its maximum), and then the loop is woken anyway.
    [[maybe_unused]] ssize_t n = ::write(eventFd_, &one, sizeof one);
  }
}

void DockerCalls::onIo(uint32_t /*events*/) {
  uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(eventFd_, &count, sizeof count);
  std::deque<std::function<void()>> ready;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ready.swap(done_);
  }
  for (auto& then : ready) {
    if (abandoned_) return;  // a callback may abandon (shutdown)
    --outstanding_;
    then();
  }
}

void DockerCalls::armWatchdog() {
  if (watchdog_ || abandoned_) return;
  watchdog_ = loop_.addTimer(options_.deadline, [this] {
    watchdog_ = 0;
    onWatchdog();
  });
}

void DockerCalls::onWatchdog() {
  Millis next = options_.deadline;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (running_ != 0) {
      const auto ranFor = Clock::now() - runningSince_;
      if (ranFor >= options_.deadline) {
        // The worker cannot move on to another request while we hold the lock, so this
        // cuts the overdue one (at worst, one that just ended: its kept-alive connection).
        client_.interrupt();
        next = std::max(Millis(10), options_.deadline / 4);  // until it has noticed
      } else {
        next = std::chrono::duration_cast<Millis>(options_.deadline - ranFor) + Millis(1);
      }
    }
  }
  if (outstanding_ == 0 || abandoned_) return;
  watchdog_ = loop_.addTimer(next, [this] {
    watchdog_ = 0;
    onWatchdog();
  });
}

}  // namespace connectable
