#!/usr/bin/env bash
# project_up.sh: puts PetroStream on AWS in one go. Terraform creates everything, the image
# is built (for linux/arm64, the task definitions' Graviton architecture) and pushed to ECR, a first
# model is published, the Power BI views are created in Athena, the services are rolled onto
# the image and model (a consumer stopped from the portal is started again), the demo
# producer is started, and the Terraform outputs are saved to .petrostream/aws-outputs.json
# for the engine and the portal.
#
# Running it again converges on the same state (the image is pushed once per commit, the
# model published once, the producer started only if none runs). --dry-run prints every
# step and command without running any of them.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: ./project_up.sh [--dry-run] [--no-replay]

  --dry-run    print each step and its commands; change nothing
  --no-replay  do not start the demo producer task

Environment: AWS_REGION (default us-east-1) and the usual AWS credentials/profile;
TF_VAR_<name> for Terraform inputs (see infra/variables.tf), e.g.
TF_VAR_budget_alert_emails='["you@example.com"]'; IMAGE_TAG (default: the git commit, the
tag CI pushes too);
PYTHON (default: .venv/bin/python).
USAGE
}

DRY_RUN=0
REPLAY=1
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    --no-replay) REPLAY=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "project_up.sh: unknown option: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/project_common.sh
source "$ROOT/scripts/project_common.sh"
export PETROSTREAM_NAME_PREFIX="$PREFIX" PETROSTREAM_HOME="$STATE_DIR"

# Immutable ECR tags: one tag per commit (the full SHA, as .github/workflows/deploy.yml tags
# it, so CI and this script never build the same commit twice), a fresh one for uncommitted changes.
if [ -z "${IMAGE_TAG:-}" ]; then
  IMAGE_TAG="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo dev)"
  if [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]; then
    IMAGE_TAG="$IMAGE_TAG-dirty-$(date -u +%Y%m%d%H%M%S)"
  fi
fi

# For commands with pipes or redirections: print the text, run the function given.
run_as() {
  local text="$1"
  shift
  printf '+ %s\n' "$text"
  if [ "$DRY_RUN" -eq 0 ]; then "$@"; fi
}

# One Terraform output; a placeholder in a dry run, where nothing was applied.
output() {
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '<%s>' "$1"
  else
    "$PYTHON" -m deploy.outputs get "$OUTPUTS" "$1"
  fi
}

save_outputs() {
  mkdir -p "$STATE_DIR"
  terraform -chdir="$INFRA" output -json >"$OUTPUTS.tmp"
  mv "$OUTPUTS.tmp" "$OUTPUTS"
}

ecr_login() {
  aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin "$1"
}

image_exists() {
  [ "$DRY_RUN" -eq 0 ] && aws ecr describe-images --repository-name "$PREFIX" \
    --image-ids "imageTag=$IMAGE_TAG" >/dev/null 2>&1
}

bucket_has_objects() {
  [ "$DRY_RUN" -eq 0 ] && [ "$(aws s3api list-objects-v2 --bucket "$1" --max-items 1 \
    --query 'Contents[0].Key' --output text)" != "None" ]
}

running_producers() {
  if [ "$DRY_RUN" -eq 1 ]; then
    echo 0
  else
    aws ecs list-tasks --cluster "$1" --family "$2" --desired-status RUNNING \
      --query 'length(taskArns)' --output text
  fi
}

echo "PetroStream up: prefix $PREFIX, region $AWS_REGION, image tag $IMAGE_TAG$([ "$DRY_RUN" -eq 1 ] && echo ', DRY RUN')"

step "Check the tools"
require_tools terraform aws docker git "$PYTHON"

step "Initialise Terraform"
run terraform -chdir="$INFRA" init -input=false

step "Create the image repository (and the key that encrypts it)"
run terraform -chdir="$INFRA" apply -input=false -auto-approve \
  -target=aws_ecr_repository.app -target=aws_ecr_lifecycle_policy.app

step "Build and push the image $IMAGE_TAG"
repository="$(if [ "$DRY_RUN" -eq 1 ]; then echo '<ecr_repository_url>'; else terraform -chdir="$INFRA" output -raw ecr_repository_url; fi)"
if image_exists; then
  echo "image $IMAGE_TAG is already in ECR; not rebuilding"
else
  run_as "aws ecr get-login-password --region $AWS_REGION | docker login --username AWS --password-stdin ${repository%%/*}" \
    ecr_login "${repository%%/*}"
  # Fargate runs the task definitions' ARM64 (Graviton) architecture: build for it on any machine
  # (an x86 one emulates it through QEMU/binfmt, as Docker Desktop and buildx set up).
  run docker build --platform linux/arm64 --tag "$repository:$IMAGE_TAG" "$ROOT"
  run docker push "$repository:$IMAGE_TAG"
fi

step "Apply the whole stack"
run terraform -chdir="$INFRA" apply -input=false -auto-approve -var "image_tag=$IMAGE_TAG"

step "Save the outputs for the engine and the portal"
run_as "terraform -chdir=$INFRA output -json > $OUTPUTS" save_outputs

run_as "eval \"\$($PYTHON -m deploy.outputs env $OUTPUTS)\"  # PETROSTREAM_BACKEND=aws and resource names" true
if [ "$DRY_RUN" -eq 0 ]; then eval "$("$PYTHON" -m deploy.outputs env "$OUTPUTS")"; fi

step "Publish a first model (skipped when the model bucket has one)"
model_bucket="$(output model_bucket)"
if bucket_has_objects "$model_bucket"; then
  echo "s3://$model_bucket already holds a model; not retraining"
else
  run "$PYTHON" -m engine demo-data --out "$STATE_DIR/demo-data"
  run "$PYTHON" -m engine train --data "$STATE_DIR/demo-data"
fi

step "Create the Power BI views in Athena (CREATE OR REPLACE: safe to repeat)"
run "$PYTHON" -m engine bi-views

step "Roll the services (the portal too when enabled) onto the image and model; wait until stable"
cluster="$(output ecs_cluster)"
# A "Stop pipeline" from the portal suspended auto-scaling at 0 consumers, which Terraform
# leaves alone: resume it (and say so), so "stable" below means consumers are running.
run "$PYTHON" -m deploy.resume --cluster "$cluster" --service "$(output consumer_service)"
services=("$(output consumer_service)")
portal_service="$(output portal_service)"
[ -n "$portal_service" ] && services+=("$portal_service")
for service in "${services[@]}"; do
  run aws ecs update-service --cluster "$cluster" --service "$service" --force-new-deployment --output text --query 'service.serviceName'
done
run aws ecs wait services-stable --cluster "$cluster" --services "${services[@]}"

if [ "$REPLAY" -eq 1 ]; then
  step "Start the demo producer (skipped when one is running)"
  family="$(output producer_task_definition)"
  if [ "$(running_producers "$cluster" "$family")" != "0" ]; then
    echo "a $family task is already running"
  else
    run aws ecs run-task --cluster "$cluster" --task-definition "$family" \
      --capacity-provider-strategy capacityProvider=FARGATE_SPOT,weight=1 \
      --network-configuration "awsvpcConfiguration={subnets=[$(output task_subnet_ids)],securityGroups=[$(output task_security_group_id)],assignPublicIp=ENABLED}" \
      --propagate-tags TASK_DEFINITION --output text --query 'tasks[0].taskArn'
  fi
fi

step "Done"
portal_url="$(output portal_url)"
if [ -n "$portal_url" ]; then
  echo "Portal: $portal_url (reachable from allowed_cidrs only)"
else
  echo "Portal, on this machine against AWS (names from $OUTPUTS):"
  echo "  PETROSTREAM_BACKEND=aws PETROSTREAM_HOME=$STATE_DIR $PYTHON -m streamlit run control_center/app.py"
fi
echo "Stop paying: ./project_down.sh"
