package main

import "github.com/spf13/cobra"

// commands lists the top-level command groups; each group lives in its own file.
func (a *app) commands() []*cobra.Command {
	return []*cobra.Command{
		a.versionCommand(), a.profilesCommand(),
		a.releaseLocalCommand(), a.releaseKMSCommand(), a.releaseNodeCommand(), a.lifecycleCommand(),
		a.buildKMSImageCommand(), a.buildNodeImageCommand(),
		a.parseQuoteCommand(), a.tdxsimCommand(),
		a.catalogCommand(),
		a.policyCommand(),
		a.guardCommand(),
		a.checksumsCommand(), a.signCommand(), a.verifyCommand(), a.verifyImageCommand(),
		a.kmsCommand(), a.e2eCommand(),
		a.measureKMSCommand(), a.measureNodeCommand(), a.gcpCommand(), a.phalaCommand(),
		a.publishCommand(), a.auditCommand(), a.catalogPRCommand(),
		a.sbomCommand(), a.vulndbCommand(),
		a.notesCommand(),
		a.migratePolicyCommand(), a.migrateCheckCommand(), a.kmsAttestationConfigCommand(),
	}
}
