#!/usr/bin/env bash
# project_down.sh: removes everything PetroStream put on AWS so nothing bills any more.
# It stops the services and everything that writes into the buckets, stops stray one-off
# tasks, empties every bucket (all object versions and delete markers), runs terraform
# destroy, then checks the account for anything of the project that is left and says
# what, exiting non-zero if any of it bills.
#
# Running it again is harmless: every step finds nothing to do. --dry-run prints every
# step and command without running any of them.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: ./project_down.sh [--dry-run] [--yes]

  --dry-run  print each step and its commands; change nothing
  --yes      do not ask for confirmation (required when not run from a terminal)

Environment: AWS_REGION (default us-east-1) and the usual AWS credentials/profile;
TF_VAR_name_prefix if the stack was created with another prefix; PYTHON (default:
.venv/bin/python).
USAGE
}

DRY_RUN=0
ASSUME_YES=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    --yes) ASSUME_YES=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "project_down.sh: unknown option: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/project_common.sh
source "$ROOT/scripts/project_common.sh"

confirm() {
  if [ "$DRY_RUN" -eq 1 ] || [ "$ASSUME_YES" -eq 1 ]; then return 0; fi
  if [ ! -t 0 ]; then
    echo "project_down.sh: this deletes all $PREFIX data in $AWS_REGION; pass --yes to confirm" >&2
    exit 2
  fi
  local answer
  read -r -p "Delete every $PREFIX resource and all its data in $AWS_REGION? Type '$PREFIX' to confirm: " answer
  [ "$answer" = "$PREFIX" ] || { echo "not confirmed; nothing changed"; exit 1; }
}

destroy_all() {
  run terraform -chdir="$INFRA" destroy -input=false -auto-approve
}

echo "PetroStream down: prefix $PREFIX, region $AWS_REGION$([ "$DRY_RUN" -eq 1 ] && echo ', DRY RUN')"
confirm

step "Check the tools"
require_tools terraform "$PYTHON"

step "Initialise Terraform"
run terraform -chdir="$INFRA" init -input=false

# Services first (their auto-scaler would start tasks again), then every writer into the
# buckets, so that the buckets stay empty once emptied.
step "Stop the services, Firehose delivery, the load balancer and bucket access logging"
run terraform -chdir="$INFRA" destroy -input=false -auto-approve \
  -target=aws_ecs_service.consumer -target=aws_ecs_service.portal \
  -target=aws_kinesis_firehose_delivery_stream.delivery -target=aws_lb.portal \
  -target=aws_s3_bucket_logging.data

step "Stop one-off tasks (the producer)"
run "$PYTHON" -m deploy.teardown stop-tasks --cluster "$PREFIX"

step "Empty every bucket: all object versions, delete markers and unfinished uploads"
run "$PYTHON" -m deploy.teardown empty-buckets --prefix "$PREFIX"

step "Destroy everything else"
if ! destroy_all; then
  # S3 delivers access logs late; a log file landing after the emptying blocks the delete.
  echo "destroy failed; emptying the buckets again and retrying once"
  run "$PYTHON" -m deploy.teardown empty-buckets --prefix "$PREFIX"
  destroy_all
fi
run rm -f "$OUTPUTS"

step "Check that nothing billable is left"
run "$PYTHON" -m deploy.teardown check --prefix "$PREFIX"
