// The OpenAI-compatible HTTP server (docs/server.md). It listens before the model is
// loaded (/health answers 503 until set_backend), serves each connection on a thread of
// cpp-httplib's pool, and hands generation to a runtime::Engine.
#pragma once
#include <memory>
#include <thread>

#include "server/context.h"

namespace httplib {
class Server;
}

namespace ember::server {

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the address and starts serving on a background thread.
  Status start();
  int port() const { return port_; }
  // The model is ready; `backend` must outlive the server's threads (until wait() returns).
  void set_backend(const Backend* backend) { ctx_.backend.store(backend); }
  // Stops accepting connections; requests in flight finish. wait() returns when they have.
  void stop();
  void wait();

 private:
  void add_routes();
  bool authorized(const std::string& path, const std::string& authorization) const;

  Context ctx_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
  int listen_fd_ = -1;  // the listening socket, to raise httplib's listen backlog of 5
};

}  // namespace ember::server
