# normalize.jq - the part of `linkprobe analyze --json` the golden tests
# compare: verdict, stage names and statuses, device identity and the counts
# that follow from the file alone (no durations, no latencies).
{
  verdict: .verdict,
  exit_code: .exit_code,
  stages: [.stages[] | "\(.name): \(.status)"],
  device: (if .device then {vid: .device.vid, pid: .device.pid, mode: .device.mode, has_usbmux: .device.has_usbmux, udid: .device.udid} else null end),
  metrics: {
    link_type: .metrics.link_type,
    devices: .metrics.devices,
    errors: .metrics.errors,
    reenumerations: .metrics.reenumerations,
    connections: (.metrics.connections | {total, refused, lockdown}),
    pair_attempts: .metrics.lockdown.pair_attempts,
    anomalies: .metrics.anomalies
  },
  devices: ((.devices // []) | map({key, verdict}))
}
