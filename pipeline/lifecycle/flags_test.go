package lifecycle

import "flag"

var update = flag.Bool("update", false, "rewrite the repository files this package generates")
