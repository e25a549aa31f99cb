#!/usr/bin/env bash
# bench_kernels.cpp compiled the ways a header-only consumer might compile it, one after the other, with the
# machine's facts: writes bench/results/cpp_kernels.md. Usage: bench/bench_kernels.sh [sizes...]
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/cpp_kernels.md
bin="$(mktemp -d)"
sizes=("${@:-1e5 1e6}")
cxx="${CXX:-c++}"
{
  echo "# fastoptim C++ step, by compile flags"
  echo
  echo "\`bench/bench_kernels.sh\` ($(date -u +%Y-%m-%dT%H:%M:%SZ); $("$cxx" --version | head -1);"
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg))."
  echo "Median ns per parameter of one float32 step of one tensor (columns: size/threads). Flags other than"
  echo "\`-fno-math-errno\` are the consumer's to choose; \`fastoptim::fastoptim\` and \`pkg-config --cflags fastoptim\` add that one."
  echo
  for flags in "-O3" "-O3 -march=x86-64-v3" "-O3 -march=x86-64-v3 -fno-math-errno" "-O3 -march=native" \
               "-O3 -march=native -fno-math-errno"; do
    # shellcheck disable=SC2086
    "$cxx" $flags -std=c++17 -fopenmp -Icpp/include bench/bench_kernels.cpp -o "$bin/bench_kernels"
    echo "### \`$flags -fopenmp\`"
    echo
    echo '```'
    # shellcheck disable=SC2086
    "$bin/bench_kernels" ${sizes[*]}
    echo '```'
    echo
  done
} > "$out"
cat "$out"
