package reports

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium finds a Chromium to render with: $CATMSIM_CHROMIUM, or Debian's
// chromium package, or Chrome.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CATMSIM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium to render report.html with: install Debian's chromium package (apt-get install chromium) or set CATMSIM_CHROMIUM")
	return ""
}

// headless runs Chromium on a local file with everything that could reach
// the network switched off, and returns its standard output.
func headless(t *testing.T, bin, page string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,2400",
	}, extra...)
	args = append(args, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.String())
	}
	return stdout.Bytes()
}

// The report renders offline in a real browser: every chart is an SVG with
// marks in it, the page's own check passes, and the screenshot is not blank.
// CATMSIM_SCREENSHOT=path keeps the screenshot to look at.
func TestHTMLRendersInChromium(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	if err := WriteDir(dir, fixtureReport(t)); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(dir, FileHTML)

	dom := string(headless(t, bin, page, "--dump-dom"))
	if m := regexp.MustCompile(`<body data-render="([^"]*)"`).FindStringSubmatch(dom); m == nil || m[1] != "ok" {
		t.Fatalf("the page's chart check did not pass: %v", m)
	}
	for _, id := range ChartIDs() {
		start := strings.Index(dom, `id="`+id+`"`)
		if start < 0 {
			t.Errorf("chart %s is not in the rendered page", id)
			continue
		}
		end := strings.Index(dom[start:], "</svg>")
		if end < 0 {
			t.Errorf("chart %s is not a complete SVG", id)
			continue
		}
		chart := dom[start : start+end]
		if !strings.Contains(chart, `class="bar"`) && !strings.Contains(chart, `class="line"`) {
			t.Errorf("chart %s has no bars or lines", id)
		}
		if strings.Contains(chart, "no-data") {
			t.Errorf("chart %s shows no data", id)
		}
	}
	for _, bad := range []string{"http://", "https://", "<parsererror"} {
		// The SVG namespace is the only URL a self-contained page may hold.
		if strings.Contains(strings.ReplaceAll(dom, "http://www.w3.org/2000/svg", ""), bad) {
			t.Errorf("the rendered page contains %q", bad)
		}
	}

	shot := filepath.Join(dir, "screenshot.png")
	headless(t, bin, page, "--screenshot="+shot, "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2400 {
		t.Fatalf("screenshot is %v", b)
	}
	if n := colours(img); n < 8 {
		t.Fatalf("screenshot has %d colours: a blank page", n)
	}
	if keep := os.Getenv("CATMSIM_SCREENSHOT"); keep != "" {
		b, _ := os.ReadFile(shot)
		if err := os.WriteFile(keep, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// colours counts the distinct colours of a coarse grid over img.
func colours(img image.Image) int {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 12, g >> 12, bl >> 12}] = true
		}
	}
	return len(seen)
}

// The comparison page renders its charts too.
func TestCompareHTMLRendersInChromium(t *testing.T) {
	bin := chromium(t)
	c, err := CompareTable(fixtureReport(t))
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "compare.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	dom := string(headless(t, bin, page, "--dump-dom"))
	if !strings.Contains(dom, `<body data-render="ok"`) {
		t.Fatal("the comparison page's chart check did not pass")
	}
	for _, p := range []string{"mqtt", "amqp", "https"} {
		if !strings.Contains(dom, "<td>"+p+"</td>") {
			t.Errorf("no table row for %s", p)
		}
	}
}
