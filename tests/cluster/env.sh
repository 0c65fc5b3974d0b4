# tests/cluster/env.sh - source me: where the test cluster started by up.sh can be reached.
# Values already set in the environment win.
export JOBAUTO_TEST_SSH_CONFIG="${JOBAUTO_TEST_SSH_CONFIG:-/tmp/jobauto-cluster/ssh_config}"
export JOBAUTO_TEST_HOST="${JOBAUTO_TEST_HOST:-testhost}"
export JOBAUTO_TEST_SSHD_LOG="${JOBAUTO_TEST_SSHD_LOG:-/tmp/jobauto-cluster/sshd.log}"
export JOBAUTO_TEST_TORQUE_BIN="${JOBAUTO_TEST_TORQUE_BIN:-/opt/slurm-torque/bin}"
# The same connection spelled out, for clients that ignore ssh_config's UserKnownHostsFile
# (paramiko does) or want explicit parameters.
export JOBAUTO_TEST_SSH_USER="${JOBAUTO_TEST_SSH_USER:-jobauto}"
export JOBAUTO_TEST_SSH_PORT="${JOBAUTO_TEST_SSH_PORT:-2222}"
export JOBAUTO_TEST_SSH_KEY="${JOBAUTO_TEST_SSH_KEY:-/tmp/jobauto-cluster/id_ed25519}"
export JOBAUTO_TEST_KNOWN_HOSTS="${JOBAUTO_TEST_KNOWN_HOSTS:-/tmp/jobauto-cluster/known_hosts}"
