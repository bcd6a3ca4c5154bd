// Command sha256once is the benchmarks' floor: it reads each file once and hashes it with
// SHA-256, -j files at a time (default GOMAXPROCS, the parallelism the audit and checksum
// verification use), and prints "digest  name" lines like sha256sum.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
)

func main() {
	jobs := flag.Int("j", runtime.GOMAXPROCS(0), "files hashed at once")
	flag.Parse()
	files := flag.Args()
	sums := make([]string, len(files))
	errs := make([]error, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(*jobs, len(files))) {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			h := sha256.New()
			for i := range next {
				sums[i], errs[i] = hashFile(files[i], h, buf)
			}
		})
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	failed := false
	for i, f := range files {
		if errs[i] != nil {
			fmt.Fprintf(os.Stderr, "sha256once: %s: %v\n", f, errs[i])
			failed = true
			continue
		}
		fmt.Printf("%s  %s\n", sums[i], f)
	}
	if failed {
		os.Exit(1)
	}
}

// hashFile reads path once into h with buf.
func hashFile(path string, h interface {
	io.Writer
	Sum([]byte) []byte
	Reset()
}, buf []byte) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h.Reset()
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
