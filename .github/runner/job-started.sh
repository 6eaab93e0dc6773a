#!/usr/bin/env bash
# Job-started hook of the self-hosted GPU runners (docs/ci.md, "Setting up a self-hosted GPU runner").
#
# The runner runs this before every job it is given (ACTIONS_RUNNER_HOOK_JOB_STARTED in the runner's
# .env points at an installed copy), before any step of the job. A non-zero exit fails the job there,
# so none of its code reaches the GPU machine. The installed copy lives on the runner host, outside
# any checkout: a pull request, from a fork or not, cannot edit it.
#
# It admits exactly one kind of job: this repository's benchmark workflow
# (.github/workflows/benchmarks.yml), run from an allowed ref (refs/heads/main) by an allowed event
# (push, schedule, workflow_dispatch). Everything else is refused: other workflows (a pull request
# that points ci.yml at the GPU labels), pull_request* and workflow_run events, other branches and
# tags, other repositories.
#
# Settings come from job-started.env beside the installed script (never from the job's
# environment, which a workflow file sets):
#   HARNESS_REPOSITORY   owner/name of this repository (required)
#   HARNESS_WORKFLOW     workflow file (default .github/workflows/benchmarks.yml)
#   HARNESS_REFS         space-separated allowed refs (default refs/heads/main)
#   HARNESS_EVENTS       space-separated allowed events (default "push schedule workflow_dispatch")
# The job's side is read from the variables GitHub sets for every job (a workflow cannot override
# GITHUB_*): GITHUB_REPOSITORY, GITHUB_WORKFLOW_REF, GITHUB_EVENT_NAME, GITHUB_REF.
set -euo pipefail

refuse() {
  echo "::error::GPU runner job-started hook refused this job: $*" >&2
  echo "job-started hook: refused (repository '${GITHUB_REPOSITORY:-}', workflow '${GITHUB_WORKFLOW_REF:-}'," \
    "event '${GITHUB_EVENT_NAME:-}', ref '${GITHUB_REF:-}')" >&2
  exit 1
}

settings="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/job-started.env"
[ -f "$settings" ] || refuse "no settings file $settings on this runner (docs/ci.md)"
HARNESS_REPOSITORY=""
HARNESS_WORKFLOW=".github/workflows/benchmarks.yml"
HARNESS_REFS="refs/heads/main"
HARNESS_EVENTS="push schedule workflow_dispatch"
# shellcheck source=/dev/null
. "$settings"
[ -n "$HARNESS_REPOSITORY" ] || refuse "HARNESS_REPOSITORY is not set in $settings"

repository="${GITHUB_REPOSITORY:-}"
workflow_ref="${GITHUB_WORKFLOW_REF:-}"
event="${GITHUB_EVENT_NAME:-}"
ref="${GITHUB_REF:-}"
[ -n "$repository" ] && [ -n "$workflow_ref" ] && [ -n "$event" ] && [ -n "$ref" ] \
  || refuse "GITHUB_REPOSITORY, GITHUB_WORKFLOW_REF, GITHUB_EVENT_NAME and GITHUB_REF must all be set"

[ "$repository" = "$HARNESS_REPOSITORY" ] || refuse "repository '$repository' is not $HARNESS_REPOSITORY"

contains() {  # contains WORD LIST: WORD is one of the space-separated words of LIST
  local word
  for word in $2; do
    [ "$word" = "$1" ] && return 0
  done
  return 1
}
contains "$event" "$HARNESS_EVENTS" || refuse "event '$event' is not one of: $HARNESS_EVENTS"
contains "$ref" "$HARNESS_REFS" || refuse "ref '$ref' is not one of: $HARNESS_REFS"

# GITHUB_WORKFLOW_REF is owner/name/<workflow file>@<ref>: the workflow file that runs, from where.
expected="$HARNESS_REPOSITORY/$HARNESS_WORKFLOW@$ref"
[ "$workflow_ref" = "$expected" ] || refuse "workflow '$workflow_ref' is not $expected"

echo "job-started hook: admitted $workflow_ref ($event)"
