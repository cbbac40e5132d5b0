#include "injector/docker_event_stream.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <Poco/Exception.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <istream>

#include "common/log.h"
#include "injector/docker_client.h"
#include "injector/docker_connection.h"
#include "injector/docker_event_lines.h"

namespace connectable {

DockerEventStream::DockerEventStream(EventLoop& loop, DockerEndpoint endpoint,
                                     DockerApiVersion version, DockerEventSink& sink)
    : DockerEventStream(loop, std::move(endpoint), version, sink, Options()) {}

DockerEventStream::DockerEventStream(EventLoop& loop, DockerEndpoint endpoint,
                                     DockerApiVersion version, DockerEventSink& sink,
                                     Options options)
    : loop_(loop), endpoint_(std::move(endpoint)), version_(version), sink_(sink),
      options_(options) {}

DockerEventStream::~DockerEventStream() { stop(); }

Status DockerEventStream::start() {
  eventFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (eventFd_ < 0) return errnoStatus("eventfd", errno);
  if (Status s = loop_.add(eventFd_, EPOLLIN, this); !s) {
    ::close(eventFd_);
    eventFd_ = -1;
    return s;
  }
  // Infinite read timeout: a quiet daemon is normal; stop() wakes the reader by shutdown,
  // and keepalive probes find a daemon that is gone without a word.
  connection_ = std::make_unique<DockerConnection>(
      endpoint_, DockerConnection::Timeouts{options_.connectTimeout, std::chrono::milliseconds(0), options_.keepAlive});
  reader_ = std::thread([this] { readerMain(); });
  return Status::ok();
}

void DockerEventStream::stop() {
  stopping_ = true;
  if (connection_) connection_->shutdown();
  if (reader_.joinable()) reader_.join();
  connection_.reset();
  if (eventFd_ >= 0) {
    loop_.remove(eventFd_);
    ::close(eventFd_);
    eventFd_ = -1;
  }
  ended_ = true;
}

void DockerEventStream::abandon() {
  stopping_ = true;
  if (connection_) connection_->shutdown();
  if (reader_.joinable()) reader_.detach();
  if (eventFd_ >= 0) loop_.remove(eventFd_);  // nothing more reaches the sink
  ended_ = true;
}

bool DockerEventStream::push(Item item, size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(queueMutex_);
    if (overflowed_) return false;
    const bool full = queue_.size() >= options_.maxQueued || queuedBytes_ + bytes > options_.maxQueuedBytes;
    if (full && !std::holds_alternative<Ended>(item)) {
      overflowed_ = true;
      queue_.emplace_back(Ended{Status::error(
          "docker event stream: more than " + std::to_string(options_.maxQueued) + " events or " +
          std::to_string(options_.maxQueuedBytes >> 20) + " MiB queued; the loop is not keeping up")});
    } else {
      queue_.push_back(std::move(item));
      queuedBytes_ += bytes;
    }
  }
  uint64_t one = 1;
  // Only EAGAIN can fail here (counter at its maximum), and then the loop is woken anyway.
  [[maybe_unused]] ssize_t n = ::write(eventFd_, &one, sizeof one);
  std::lock_guard<std::mutex> lock(queueMutex_);
  return !overflowed_;
}

void DockerEventStream::readerMain() {
  std::string path = dockerEventsPath(version_, options_.sinceNanos);
  std::istream* body = nullptr;
  auto httpStatus = connection_->openStream(path, &body);
  Status end;
  if (!httpStatus) {
    end = httpStatus.status().withContext("docker event stream");
  } else if (*httpStatus != 200) {
    std::string text;
    try {
      readAtMost(*body, kMaxErrorBodyBytes, &text);  // enough for its message, not an endless body
    } catch (const Poco::Exception&) {
    }
    end = Status::error("docker event stream: GET " + path + ": HTTP " +
                        std::to_string(*httpStatus) + ": " + dockerErrorMessage(text));
  } else if (push(Connected{})) {
    end = readLines(*body);
  }
  if (stopping_) end = Status::error("docker event stream: stopped");
  connection_->close();
  push(Ended{end.isOk() ? Status::error("docker event stream ended") : end});
}

Status DockerEventStream::readLines(std::istream& body) {
  std::streambuf* buf = body.rdbuf();
  DockerEventLines lines(options_.maxLineBytes);
  char bytes[16384];
  try {
    for (;;) {
      // The buffer is POCO's chunked decoder: sgetc() waits for the daemon only when it
      // holds nothing, and in_avail() is then what it holds, taken without waiting.
      if (buf->sgetc() == std::char_traits<char>::eof()) {
        return Status::error(lines.pendingBytes() == 0
                                 ? "docker event stream: dockerd closed the connection"
                                 : "docker event stream: dockerd closed the connection within a line");
      }
      const std::streamsize want = std::min<std::streamsize>(buf->in_avail(), sizeof bytes);
      std::string_view input(bytes, static_cast<size_t>(buf->sgetn(bytes, std::max<std::streamsize>(want, 1))));
      while (!input.empty()) {
        auto line = lines.take(&input);
        if (line && !deliver(*line)) return Status::ok();  // the overflow already queued its Ended
      }
    }
  } catch (const Poco::TimeoutException& e) {
    // The stream's reads have no timeout: this is ETIMEDOUT, unanswered keepalive probes.
    return Status::error("docker event stream: dockerd stopped answering (keepalive probes unanswered: " +
                         e.displayText() + ")");
  } catch (const Poco::Exception& e) {
    return Status::error("docker event stream: " + e.displayText());
  } catch (const std::exception& e) {
    return Status::error(std::string("docker event stream: ") + e.what());
  }
}

bool DockerEventStream::deliver(const DockerEventLine& line) {
  switch (line.kind) {
    case DockerEventLine::Kind::Blank:
      return true;
    case DockerEventLine::Kind::Overlong:
      return push(Malformed{Status::error("docker event: line longer than " +
                                          std::to_string(options_.maxLineBytes) + " bytes")});
    case DockerEventLine::Kind::Text:
      break;
  }
  auto ev = parseDockerEvent(line.text);
  if (ev) return push(std::move(*ev), line.text.size());
  std::string excerpt(line.text.substr(0, 200));
  return push(Malformed{ev.status().withContext("line '" + excerpt + "'")});
}

void DockerEventStream::onIo(uint32_t /*events*/) {
  uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(eventFd_, &count, sizeof count);
  std::deque<Item> items;
  {
    std::lock_guard<std::mutex> lock(queueMutex_);
    items.swap(queue_);
    queuedBytes_ = 0;
  }
  for (Item& item : items) {
    if (ended_) return;
    if (std::holds_alternative<Connected>(item)) {
      log::info("docker event stream connected", {{"docker", endpoint_.toString()}});
      sink_.onDockerStreamConnected();
    } else if (auto* ev = std::get_if<DockerEvent>(&item)) {
      if (ev->timeNano != 0) lastEventNanos_ = ev->timeNano;
      sink_.onDockerEvent(*ev);
    } else if (auto* bad = std::get_if<Malformed>(&item)) {
      ++malformed_;
      log::warn("skipping malformed docker event", {{"error", bad->why.message()}});
      sink_.onDockerEventMalformed(bad->why);
    } else if (auto* end = std::get_if<Ended>(&item)) {
      ended_ = true;
      log::warn("docker event stream ended", {{"error", end->why.message()}});
      sink_.onDockerStreamEnded(end->why);
    }
  }
}

}  // namespace connectable
