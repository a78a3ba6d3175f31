#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <unistd.h>
#include <cstring>

#include "../../daemon/privileges.hpp"

using namespace duet::daemon;

TEST(SystemdNotify, SendsReadyAndStatusWhenNotifySocketIsSet) {
  const std::string path = ::testing::TempDir() + "/duet-notify-" + std::to_string(getpid());
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  unlink(path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  setenv("NOTIFY_SOCKET", path.c_str(), 1);
  EXPECT_TRUE(notify_ready("running: mode server"));
  char buf[256] = {};
  const auto n = recv(fd, buf, sizeof buf - 1, 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), "READY=1\nSTATUS=running: mode server");
  unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(notify_ready("nobody listens")) << "outside systemd nothing is sent";
  close(fd);
  unlink(path.c_str());
}

TEST(Privileges, LooksUpUsersAndGroupsByName) {
  Identity id;
  std::string error;
  ASSERT_TRUE(lookup_identity("root", "", id, error)) << error;
  EXPECT_EQ(id.uid, 0u);
  EXPECT_FALSE(lookup_identity("no-such-user-duet", "", id, error));
  EXPECT_EQ(error, "unknown user 'no-such-user-duet'");
  EXPECT_FALSE(lookup_identity("", "no-such-group-duet", id, error));
  EXPECT_EQ(error, "unknown group 'no-such-group-duet'");
}
