#!/usr/bin/env bash
# Job-started hook of the self-hosted GPU runners (docs/ci.md, "Setting up a self-hosted GPU runner").
#
# The runner runs this before every job it is given (ACTIONS_RUNNER_HOOK_JOB_STARTED in the runner's
# .env points at an installed copy), before any step of the job. A non-zero exit fails the job there,
# so none of its code reaches the GPU machine. The installed copy lives on the runner host, outside
# any checkout: a pull request, from a fork or not, cannot edit it.
#
# It admits this repository's benchmark workflow (.github/workflows/benchmarks.yml), run from an
# allowed ref (refs/heads/main) by an allowed event (push, schedule, workflow_dispatch); and, only
# where HARNESS_PULL_REQUEST_LABEL is set, that workflow's A/B job (`ab`) for a pull_request event
# that added that label to a pull request whose head branch is in this repository, as the event
# payload GitHub wrote for the job says (GITHUB_EVENT_PATH; never from a fork). Everything else is
# refused: other workflows (a pull request that points ci.yml at the GPU labels), other jobs of a
# pull request, pull_request_target and workflow_run events, other branches and tags, other
# repositories.
#
# Settings come from job-started.env beside the installed script (never from the job's
# environment, which a workflow file sets):
#   HARNESS_REPOSITORY   owner/name of this repository (required)
#   HARNESS_WORKFLOW     workflow file (default .github/workflows/benchmarks.yml)
#   HARNESS_REFS         space-separated allowed refs (default refs/heads/main)
#   HARNESS_EVENTS       space-separated allowed events (default "push schedule workflow_dispatch")
#   HARNESS_PULL_REQUEST_LABEL  the label that starts the A/B job of a pull request (default empty:
#                        pull requests are refused)
# The job's side is read from the variables GitHub sets for every job (a workflow cannot override
# GITHUB_*): GITHUB_REPOSITORY, GITHUB_WORKFLOW_REF, GITHUB_EVENT_NAME, GITHUB_REF, GITHUB_JOB and
# GITHUB_EVENT_PATH.
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
HARNESS_PULL_REQUEST_LABEL=""
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
# pull_request_fields: the payload's head repository, action and added label, one per line.
pull_request_fields() {
  python3 -c 'import json, sys
event = json.load(open(sys.argv[1], encoding="utf-8"))
print(((event.get("pull_request") or {}).get("head") or {}).get("repo", {}).get("full_name", ""))
print(event.get("action", ""))
print((event.get("label") or {}).get("name", ""))' "$1"
}

if [ "$event" = pull_request ]; then
  [ -n "$HARNESS_PULL_REQUEST_LABEL" ] || refuse "pull requests are not admitted on this runner"
  [ "${GITHUB_JOB:-}" = ab ] || refuse "job '${GITHUB_JOB:-}' of a pull request: only the A/B job 'ab' is admitted"
  [[ "$ref" =~ ^refs/pull/[0-9]+/merge$ ]] || refuse "ref '$ref' is not a pull request's merge ref"
  payload="${GITHUB_EVENT_PATH:-}"
  [ -f "$payload" ] || refuse "no event payload (GITHUB_EVENT_PATH) to read the pull request's head from"
  fields="$(pull_request_fields "$payload")" || refuse "the event payload $payload cannot be read"
  head_repository="$(sed -n 1p <<<"$fields")"
  action="$(sed -n 2p <<<"$fields")"
  label="$(sed -n 3p <<<"$fields")"
  [ "$head_repository" = "$HARNESS_REPOSITORY" ] || refuse "pull request head '$head_repository' is not a branch of $HARNESS_REPOSITORY"
  [ "$action" = labeled ] && [ "$label" = "$HARNESS_PULL_REQUEST_LABEL" ] \
    || refuse "pull request event '$action' with label '$label' is not adding '$HARNESS_PULL_REQUEST_LABEL'"
else
  contains "$event" "$HARNESS_EVENTS" || refuse "event '$event' is not one of: $HARNESS_EVENTS"
  contains "$ref" "$HARNESS_REFS" || refuse "ref '$ref' is not one of: $HARNESS_REFS"
fi

# GITHUB_WORKFLOW_REF is owner/name/<workflow file>@<ref>: the workflow file that runs, from where.
expected="$HARNESS_REPOSITORY/$HARNESS_WORKFLOW@$ref"
[ "$workflow_ref" = "$expected" ] || refuse "workflow '$workflow_ref' is not $expected"

echo "job-started hook: admitted $workflow_ref ($event)"
