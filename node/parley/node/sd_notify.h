// systemd's notification protocol (sd_notify(3)) without libsystemd: when started by systemd
// with Type=notify, $NOTIFY_SOCKET names a unix datagram socket (a leading '@' means the
// abstract namespace) to which the service sends newline-separated KEY=VALUE lines:
// READY=1, RELOADING=1 with MONOTONIC_USEC=, STOPPING=1, STATUS=text, WATCHDOG=1.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace parley::node {

// Sends `state`; false when not started by systemd or the send failed (never fatal).
bool sd_notify(const std::string& state);

// "RELOADING=1\nMONOTONIC_USEC=<CLOCK_MONOTONIC now>", as systemd expects for a reload.
std::string sd_reloading_state();

// $WATCHDOG_USEC when the watchdog is on for this process ($WATCHDOG_PID unset or ours).
std::optional<std::chrono::microseconds> sd_watchdog_interval();

}  // namespace parley::node
