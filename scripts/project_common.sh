# Shared by project_up.sh and project_down.sh (sourced after they parse their options and set
# ROOT and DRY_RUN): the paths and names both use, and how a step and a command are shown and
# run, or only shown in a dry run.
# shellcheck shell=bash

cd "$ROOT" || exit 1
INFRA="$ROOT/infra"
STATE_DIR="${PETROSTREAM_HOME:-$ROOT/.petrostream}"
OUTPUTS="$STATE_DIR/aws-outputs.json"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export TF_VAR_region="$AWS_REGION"
export TF_IN_AUTOMATION=1
PREFIX="${TF_VAR_name_prefix:-petrostream}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3

STEP=0
step() {
  STEP=$((STEP + 1))
  printf '\n==> [%d] %s\n' "$STEP" "$*"
}

# Print a command (quoting only words that need it), then run it unless this is a dry run.
run() {
  local word line="+"
  for word in "$@"; do
    if [[ "$word" =~ ^[][A-Za-z0-9_./:=,@%+{}\<\>-]+$ ]]; then
      line+=" $word"
    else
      line+=" $(printf '%q' "$word")"
    fi
  done
  printf '%s\n' "$line"
  if [ "$DRY_RUN" -eq 0 ]; then "$@"; fi
}

require_tools() {
  local missing=()
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$DRY_RUN" -eq 1 ]; then
      echo "note: not installed here: ${missing[*]} (needed for a real run)"
    else
      echo "${0##*/}: install ${missing[*]} first" >&2
      exit 1
    fi
  fi
}

