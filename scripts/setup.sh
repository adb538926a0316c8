#!/usr/bin/env bash
# Sets up everything this project needs on a fresh machine, and is quick when nothing changed:
#   - Debian's PostgreSQL server binaries (the sandbox runs real servers), when none are found;
#   - Debian's redis-server (the sandbox's cache), when missing;
#   - a virtualenv in .venv with the pinned requirements: the program's (requirements.txt, the Pulumi
#     project uses it too) and the test and development tools' (requirements-dev.txt);
#   - promtool, pinned, in .tools/ (the tests check monitoring/alerts.yml with it), built with Go.
#   - the Apache Kafka / MirrorMaker 2 jars pinned in sandbox/kafka/pom.xml (needs Java 17 and Maven).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: no PostgreSQL server binaries under /usr/lib/postgresql; install Debian's 'postgresql' package (needs root)" >&2
    exit 1
  fi
  echo "setup: installing Debian's postgresql package"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib >/dev/null
fi

# Debian's Redis server: the sandbox's cache (real RDB snapshots, restores into new servers)
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: no redis-server; install Debian's 'redis-server' package (needs root)" >&2
    exit 1
  fi
  echo "setup: installing Debian's redis-server package"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# requirements.txt: the Pulumi program's environment; requirements-dev.txt (which includes it):
# the test and development tools. One stamp over both: a change to either reinstalls.
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
have=$(cat .venv/.requirements.sha256 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  echo "setup: installing pinned Python packages into .venv (requirements.txt, requirements-dev.txt)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
  echo "$want" > .venv/.requirements.sha256
fi

# promtool: Prometheus publishes Go module versions v0.3XX.Y for its 3.X.Y releases; this one is
# the Go module proxy's newest when it was pinned. Built once (minutes), then kept: a rerun with
# the binary and its version stamp in place does nothing.
PROMTOOL_VERSION=v0.316.0
if [ ! -x .tools/promtool ] || [ "$(cat .tools/promtool.version 2>/dev/null || true)" != "$PROMTOOL_VERSION" ]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "setup: Go is not on PATH; it builds promtool ($PROMTOOL_VERSION), which the tests need to check" \
         "monitoring/alerts.yml. Install Go (e.g. Debian's golang-go) and rerun scripts/setup.sh" >&2
    exit 1
  fi
  echo "setup: building promtool $PROMTOOL_VERSION into .tools/ (go install; minutes the first time)"
  mkdir -p .tools
  GOBIN="$PWD/.tools" GOFLAGS=-mod=mod go install "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION"
  echo "$PROMTOOL_VERSION" > .tools/promtool.version
fi

# Apache Kafka and MirrorMaker 2 for the sandbox: the jars pinned in sandbox/kafka/pom.xml, from
# Maven Central, copied into .cache/kafka-jars (gitignored). Skipped when the pom is unchanged.
jars=${REGIONPAIR_KAFKA_JARS:-.cache/kafka-jars}
pom=${REGIONPAIR_KAFKA_POM:-sandbox/kafka/pom.xml}
want=$(sha256sum "$pom" | cut -d' ' -f1)
have=$(cat "$jars/.pom.sha256" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  if ! command -v java >/dev/null 2>&1; then
    echo "setup: Java is missing; the sandbox's Kafka needs Java 17: apt-get install openjdk-17-jre-headless (root), then rerun scripts/setup.sh" >&2
    exit 1
  fi
  if ! command -v mvn >/dev/null 2>&1; then
    echo "setup: Maven is missing; it fetches the pinned Kafka jars: apt-get install maven (root), then rerun scripts/setup.sh" >&2
    exit 1
  fi
  version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
  echo "setup: fetching Apache Kafka $version and MirrorMaker 2 from Maven Central into $jars"
  tmp="$jars.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$jars")"  # a fresh checkout has no .cache/ yet
  if ! mvn -q -B -f "$pom" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies -DoutputDirectory="$(pwd)/$tmp" >"$tmp.log" 2>&1; then
    if grep -qiE "could not find artifact|was not found in|Failure to find" "$tmp.log"; then
      echo "setup: Maven Central has no Kafka $version artifacts (kafka_2.13, connect-mirror, ...): fix <kafka.version> in $pom (a version Maven Central lists for org.apache.kafka:kafka_2.13), then rerun" >&2
    elif grep -qiE "transfer failed|unknownhost|connect timed out|connection refused|could not transfer|network is unreachable|NoPluginFoundForPrefix" "$tmp.log"; then
      echo "setup: Maven cannot reach Maven Central; check the network or proxy (~/.m2/settings.xml), then rerun" >&2
    else
      echo "setup: Maven failed fetching the Kafka jars:" >&2
    fi
    tail -5 "$tmp.log" | sed 's/^/  mvn: /' >&2
    rm -rf "$tmp" "$tmp.log"
    exit 1
  fi
  rm -f "$tmp.log"
  echo "$want" > "$tmp/.pom.sha256"
  rm -rf "$jars"
  mkdir -p "$(dirname "$jars")"
  mv "$tmp" "$jars"
fi
