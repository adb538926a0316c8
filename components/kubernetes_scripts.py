"""The shell scripts of ClusterDr's CronJobs (the database dump, the slot capture, the ConfigMap and
Secret export) and the object-store prefixes they write under; components/kubernetes.py runs them.

Scripts: POSIX sh with `set -eu` and no pipes (every step's failure fails the Job, in any sh); no
`set -x`, and nothing that echoes a password or a Secret's content: both exist only in memory-backed
volumes of the pod; the only output is where things went.
"""

from __future__ import annotations

DUMP_PREFIX = "pgdump"
EXPORT_PREFIX = "k8s-config"

FETCH_PASSWORD = """set -eu
umask 077
region=$(printf '%s' "$SECRET_ARN" | cut -d: -f4)
aws secretsmanager get-secret-value --region "$region" --secret-id "$SECRET_ARN" \\
  --query SecretString --output text > /run/pg/secret.json
jq -er .password /run/pg/secret.json > /run/pg/password
rm -f /run/pg/secret.json
"""

DUMP = """set -eu
if [ -z "${PGPASSWORD:-}" ]; then PGPASSWORD=$(cat /run/pg/password); export PGPASSWORD; fi
pg_dump --format=custom --no-password --file=/dump/database.dump
"""

UPLOAD = """set -eu
key="$PREFIX/$DATABASE/$(date -u +%Y-%m-%dT%H%M%SZ).dump"
aws s3 cp /dump/database.dump "s3://$BUCKET/$key" --sse aws:kms --sse-kms-key-id "$KMS_KEY_ARN" \\
  --checksum-algorithm CRC32 --only-show-errors
rm -f /dump/database.dump
echo "uploaded s3://$BUCKET/$key"
"""

CAPTURE_SLOTS = """set -eu
if [ -z "${PGPASSWORD:-}" ]; then PGPASSWORD=$(cat /run/pg/password); export PGPASSWORD; fi
psql --no-psqlrc --no-align --tuples-only --quiet -v ON_ERROR_STOP=1 --no-password -c "$CAPTURE_SQL" \\
  --output=/dump/slots.json
"""

# the object name is contract.slot_backup.key(): the capture's own clock, to the microsecond, so names sort by time
UPLOAD_SLOTS = """set -eu
if jq -e '.in_recovery or .read_only' /dump/slots.json > /dev/null; then
  echo "$DATABASE: the server is a replica or fenced, it holds no slots to keep; nothing uploaded"
  rm -f /dump/slots.json
  exit 0
fi
stamp=$(jq -r '(.captured_at | floor | strftime("%Y%m%dT%H%M%S")) + "." +
  (("000000" + ((.captured_at * 1000000 | floor) % 1000000 | tostring)) | .[-6:]) + "Z"' /dump/slots.json)
key="$PREFIX/$DATABASE/$stamp.json"
aws s3 cp /dump/slots.json "s3://$BUCKET/$key" --sse aws:kms --sse-kms-key-id "$KMS_KEY_ARN" \\
  --content-type application/json --checksum-algorithm CRC32 --only-show-errors
rm -f /dump/slots.json
echo "kept s3://$BUCKET/$key"
"""

# what a restore can `kubectl apply` into another cluster: no server-set fields, no owner references
# (their uids do not exist there, the garbage collector would delete the objects), and not the
# kube-root-ca.crt ConfigMap each namespace gets from the cluster itself
CLEAN = ('{apiVersion: "v1", kind: "List", items: [.items[] | select(.metadata.name != "kube-root-ca.crt") '
         '| del(.metadata.resourceVersion, .metadata.uid, .metadata.creationTimestamp, .metadata.managedFields, '
         '.metadata.ownerReferences, .metadata.selfLink, .metadata.generation)]}')

EXPORT = """set -eu
umask 077
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
save() {  # save <object name> <kubectl get args…>: cleaned, to S3 under the region key; never printed
  name=$1
  shift
  kubectl get "$@" -o json > /export/raw.json
  jq -c "$CLEAN" /export/raw.json > /export/clean.json
  rm -f /export/raw.json
  aws s3 cp /export/clean.json "s3://$BUCKET/$PREFIX/$stamp/$name" --sse aws:kms --sse-kms-key-id "$KMS_KEY_ARN" \\
    --checksum-algorithm CRC32 --only-show-errors
  rm -f /export/clean.json
}
if [ "$EXPORT_NAMESPACES" = "*" ]; then
  save all-namespaces/configmaps.json configmaps --all-namespaces
  save all-namespaces/secrets.json secrets --all-namespaces --field-selector type!=kubernetes.io/service-account-token
else
  for ns in $EXPORT_NAMESPACES; do
    save "$ns/configmaps.json" configmaps -n "$ns"
    save "$ns/secrets.json" secrets -n "$ns" --field-selector type!=kubernetes.io/service-account-token
  done
fi
echo "exported to s3://$BUCKET/$PREFIX/$stamp/"
"""
