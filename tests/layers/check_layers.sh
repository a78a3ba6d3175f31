#!/usr/bin/env bash
# The layers, as the build means them (lib/CMakeLists.txt): each folder may include only
# the duet headers of the layers below it, and no code above `posix` may touch the
# kernel's network, read the wall clock or draw randomness except through the seams
# (NetworkStack, Clock, Tun); the installed headers include no third-party header.
# Prints every offending line; exits 1 if there is one.
#   check_layers.sh SOURCE_DIR
set -u
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 2
bad=0

# layer -> the duet header folders it may include
declare -A allowed=(
  [net]="net"
  [config]="net config"
  [policy]="net config policy"
  [transport]="net config policy transport"
  [tunnel]="net config policy transport tunnel"
  [plugin]="net config policy transport plugin"
  [node]="net config policy transport tunnel plugin node"
  [posix]="net posix"
  [sim]="net sim"
  [scenario]="net config policy transport tunnel plugin node sim"
)

# The files of each layer: sources and public headers.
files_of() {
  case $1 in
    sim) ls sim/*.cpp sim/*.hpp sim/include/duet/sim/{world,random,tun}.hpp ;;
    scenario) ls sim/scenario/*.cpp sim/include/duet/sim/{scenario,runner,judge,probe_session}.hpp ;;
    *) ls lib/$1/*.cpp lib/$1/*.hpp lib/include/duet/$1/*.hpp 2>/dev/null ;;
  esac
}

for layer in "${!allowed[@]}"; do
  for f in $(files_of "$layer"); do
    while IFS= read -r inc; do
      dep=${inc#duet/}
      dep=${dep%%/*}
      [[ $inc == duet/plugin.h ]] && dep=plugin
      if [[ " ${allowed[$layer]} " != *" $dep "* ]]; then
        echo "$f: layer '$layer' includes $inc (allowed: ${allowed[$layer]})"
        bad=1
      fi
    done < <(grep -ho '#include "duet/[^"]*"' "$f" | sed 's/#include "\(.*\)"/\1/')
  done
done

# Above posix: no Asio, no socket or interface headers, no kernel clock or randomness.
engine=$(for l in net config policy transport tunnel plugin node sim scenario; do files_of "$l"; done)
forbidden_includes='boost/asio|<sys/socket\.h>|<netinet/|<arpa/inet\.h>|<netdb\.h>|<ifaddrs\.h>|<net/if\.h>|<linux/if_tun\.h>|<sys/ioctl\.h>'
if grep -nE "#include *[<\"]($forbidden_includes)" $engine; then
  echo "^ engine code must reach the network through NetworkStack (only lib/posix knows the kernel)"
  bad=1
fi
# The one exception: tunnel/crypto.cpp makes keys for `duetd genkey` from the system's generator.
# (Comment lines are not code.) The runner and duet-sim time their own runs for the
# report with steady_clock, never for the simulation.
code() { grep -nE "$1" "${@:2}" | grep -vE '^[^:]*:[0-9]+:[[:space:]]*//'; }
engine_logic=$(echo "$engine" | grep -v -e '^lib/tunnel/crypto.cpp$' -e '^sim/scenario/runner.cpp$' -e '^sim/scenario/main.cpp$')
if code 'std::random_device|[^_a-z]rand\(|getrandom|randombytes_|system_clock::now|steady_clock::now|high_resolution_clock' $engine_logic; then
  echo "^ engine and simulator code take time from Clock and randomness from NetworkStack::random"
  bad=1
fi
if code 'system_clock::now|random_device|getrandom|randombytes_' sim/scenario/runner.cpp sim/scenario/main.cpp; then
  echo "^ the scenario runner must not read calendar time or draw randomness"
  bad=1
fi
# The installed headers keep third-party libraries private: a user of the package needs
# none of their headers (they are linked inside the shared libraries only).
if grep -rnE '#include *[<"](boost|spdlog|fmt|sodium|openssl|toml\+\+|nlohmann|CLI|systemd)[/.]' lib/include sim/include; then
  echo "^ a public header includes a third-party header: users of the installed package would need it"
  bad=1
fi
((bad)) || echo "layers: every include goes one way; no kernel, wall clock or randomness above posix; no third-party header in the public ones"
exit $bad
