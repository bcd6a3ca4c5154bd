package flow

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/vuln"
)

// vulnReportFile is the copy of vulnerabilities.json a run keeps next to report.json (also when
// the gate refuses the release, whose assets are never published).
const vulnReportFile = "vulnerabilities.json"

// vulnStage scans the release's SBOM for known vulnerabilities (pipeline/vuln) right after it
// is generated: it writes vulnerabilities.json and the notes' section, and, where the class
// rules make the gate blocking (stable, hotfix), refuses a release with fixable findings at or
// above the threshold that the allow-list does not accept (exit 10), or with no database (exit
// 2). A release candidate's findings, or its missing database, are [WARN] lines. A malformed
// allow-list or an unreadable database is an error for every class.
func (r *run) vulnStage() Stage {
	return Stage{Name: "vulnerabilities", Skip: r.unlessBuilt, Run: func(ctx context.Context) error {
		vc := r.cfg.Vuln
		blocking := r.rules.VulnerabilityGateBlocking
		log := r.checkLog(!blocking)
		sboms := []vuln.SBOM{{Name: release.SBOMFile, Path: filepath.Join(r.assets, release.SBOMFile)}}
		allow, err := vuln.LoadAllowList(vc.AllowList, vc.AllowListOptional)
		if err != nil {
			return err
		}
		var rep *vuln.Report
		if vc.DB == "" {
			if blocking {
				return outcome.UsageErrorf("%s: a %s release must be scanned for vulnerabilities but no database is configured: give a grype database directory with --vuln-db DIR (or $MERO_RELEASE_VULN_DB); `mero-release vulndb update --dir DIR` downloads one",
					r.cfg.Tag, r.class)
			}
			rep = vuln.NotScanned("no vulnerability database configured (--vuln-db)", vc.FailOn, sboms)
			log.Warnf("vulnerabilities: %s not scanned: no vulnerability database configured (--vuln-db); advisory for a %s release", r.cfg.Tag, r.class)
		} else {
			db, err := vuln.OpenDB(ctx, vc.DB, filepath.Join(r.cfg.WorkDir, r.cfg.Tag.String()))
			if err != nil {
				return err
			}
			defer db.Close()
			if db.Info.Advisories > 0 {
				r.cfg.Log.Warnf("vulnerabilities: the database is built from the local advisory list %s (%d advisories), not a full grype database: give --vuln-db DIR for one",
					strings.TrimPrefix(vc.DB, vuln.LocalPrefix), db.Info.Advisories)
			}
			rep, err = vuln.Scan(ctx, sboms, vuln.Options{DB: db, AllowList: allow, FailOn: vc.FailOn, Now: r.cfg.now})
			if err != nil {
				return err
			}
		}
		rep.Family, rep.Version = string(r.cfg.Tag.Family), r.cfg.Tag.Version.String()
		data, err := rep.Marshal()
		if err != nil {
			return err
		}
		if err := r.writeAsset(release.VulnerabilitiesFile, data); err != nil {
			return err
		}
		if err := r.writeWorkJSON(vulnReportFile, rep); err != nil {
			return err
		}
		r.vulnNotes = rep.Markdown()
		for _, e := range rep.ExpiredAllowEntries {
			r.cfg.Log.Warnf("vulnerabilities: allow-list entry %s expired on %s: it no longer applies", e.ID, e.Expires)
		}
		if !rep.Scanned {
			return nil
		}
		var counts []string
		for _, s := range []vuln.Severity{vuln.Critical, vuln.High, vuln.Medium, vuln.Low, vuln.Negligible, vuln.Unknown} {
			if n := rep.Counts[s.String()]; n > 0 {
				counts = append(counts, fmt.Sprintf("%d %s", n, s))
			}
		}
		if len(counts) == 0 {
			counts = append(counts, "none")
		}
		r.cfg.Log.Infof("vulnerabilities: %s scanned against %s (schema %s, built %s): %s", release.SBOMFile, rep.DB.Source, rep.DB.Schema,
			rep.DB.Built.Format("2006-01-02"), strings.Join(counts, ", "))
		if err := rep.Err(); err != nil {
			if blocking {
				return err
			}
			log.Failf("vulnerabilities (advisory for a %s release): %v", r.class, err)
			return nil
		}
		log.Passf("vulnerabilities: no fixable finding at or above %s blocks %s", rep.FailOn, r.cfg.Tag)
		return nil
	}}
}
