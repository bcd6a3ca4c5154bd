// Package gcp runs ephemeral GCP Confidential VMs (Intel TDX) for the node-image measurement
// stage and the E2E, through cloud.google.com/go/compute's REST client, and deletes them on
// every path. It implements vm.Provider.
//
// # The VM
//
// Create inserts, in the configured project and zone, an instance with machine type
// c3-standard-4, confidentialInstanceConfig.confidentialInstanceType=TDX,
// scheduling.onHostMaintenance=TERMINATE, min CPU platform "Intel Sapphire Rapids", a
// pd-balanced boot disk created from the image under test (projects/P/global/images/NAME,
// auto-deleted with the VM), one interface on the default network without an external
// address, and the labels
//
//	mero-release=ephemeral  profile=<profile>  created-at=<unix seconds>  run-id=…  tag=…
//
// (label values are lower-cased and every character other than [a-z0-9_-] becomes '_': the tag
// mero-tee-v1.2.0-rc.1 is labelled mero-tee-v1_2_0-rc_1). It waits for the insert operation,
// checks the operation's error, then polls the instance until its status is RUNNING (bounded
// by Config.BootTimeout). Any failure after the insert was accepted deletes the VM before
// Create returns.
//
// # The agent contract (what the node image must do; package gcp/guestapi, cmd/mero-tee-agent)
//
// The instance metadata carries
//
//	enable-guest-attributes = TRUE
//	mero-tee-nonce          = <128 lower-case hex characters: the 64-byte nonce>
//	mero-tee-profile        = <profile>
//
// The image's agent (mero-tee-agent), once the system is up, reads mero-tee-nonce from the metadata server
// (http://metadata.google.internal/computeMetadata/v1/instance/attributes/mero-tee-nonce),
// obtains a TDX quote whose 64-byte REPORTDATA is exactly those nonce bytes (configfs-tsm
// /sys/kernel/config/tsm/report or /dev/tdx_guest), and publishes it as a guest attribute in
// namespace "mero-tee":
//
//	PUT …/computeMetadata/v1/instance/guest-attributes/mero-tee/tdx-quote
//	    body: the quote, standard base64 with padding (RFC 4648 §4)
//
// When one value cannot hold the quote, the agent may publish it in parts instead:
// tdx-quote-parts = N (decimal, 1–64) and tdx-quote-0 … tdx-quote-(N-1), whose concatenation is
// the base64 text. When it cannot produce a quote it publishes tdx-quote-error = <message>, and
// Quote fails at once with that message instead of waiting.
//
// # Quotes over caller-chosen report data (key release)
//
// Instance.QuoteReportData (the e2e.ReportDataQuoter the E2E's key release uses) writes, with
// instances.setMetadata (the current fingerprint, retried when it went stale),
//
//	mero-tee-quote-request = <id>:<128 lower-case hex characters: the report data>
//
// with a fresh random id, and waits for the agent's answer in guest attribute
// mero-tee/quote-<id> (or its parts, or quote-<id>-error), as for the boot quote. The agent
// removes the previous answer when it takes a new request. Nothing but the Compute Engine API
// is used: the VM has no external address and no firewall rule is created.
//
// Instance.Quote polls instances.getGuestAttributes(queryPath="mero-tee/") every
// Config.PollInterval until the quote is there or Config.QuoteTimeout passes. A value that is
// not base64, or is empty, is a verification failure (exit 10); the caller verifies the quote
// itself and its nonce binding (measure.MeasureNode).
//
// # Cleanup and the sweeper
//
// Delete retries (Config.DeleteAttempts) and treats a VM that is already gone as deleted.
// vm.WithVM deletes on every path; vm.Sweep with this provider deletes mero-release=ephemeral
// VMs of the zone older than 24 hours, as `mero-release gcp sweep` does.
//
// # Credentials
//
// CredentialsOption builds the client option from a service-account key (the
// GCP_SERVICE_ACCOUNT_KEY secret), checking that it is one: it uses
// option.WithAuthCredentialsJSON(option.ServiceAccount, key), the replacement Google
// recommends for the deprecated option.WithCredentialsJSON, which would also accept other,
// riskier credential types. Tests use option.WithEndpoint(fake.URL) and
// option.WithoutAuthentication() against gcptest.Server.
package gcp
