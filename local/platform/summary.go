package platform

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

// WriteSummary prints what is running and where its data lives.
func (p *Platform) WriteSummary(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "\nSkyflow is running.")
	fmt.Fprintln(tw)
	gateway := "none yet (no Service in the manifests is public)"
	for _, s := range p.Status() {
		if s.Public {
			gateway = strings.Replace(s.URL.String(), "127.0.0.1", "localhost", 1)
		}
	}
	fmt.Fprintf(tw, "  Gateway\t%s  (HTTPS: %s, development certificate in %s)\n", gateway,
		strings.Replace(p.GatewayTLSURL(), "127.0.0.1", "localhost", 1), filepath.Join(p.cfg.DevDir, "tls"))
	fmt.Fprintf(tw, "  Administrator\tAPI key in %s: curl -H \"Authorization: Bearer $(cat %[1]s)\" …\n", filepath.Join(p.cfg.DevDir, AdminKeyFile))
	if p.mailbox != nil {
		fmt.Fprintf(tw, "  Mail\tevery email the platform sends lands in %s (one .eml file each); SMTP on %s (STARTTLS, AUTH)\n",
			p.mailbox.Dir(), p.mailbox.Addr())
	}
	fmt.Fprintln(tw, "\n  Functions\tstate\tscale\taddress")
	for _, s := range p.Status() {
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", s.Name, s.State, scale(s.MinScale), s.URL)
	}
	fmt.Fprintln(tw, "\n  Eventing")
	for _, b := range p.set.Brokers {
		fmt.Fprintf(tw, "    broker %s\tKafka topic %s\t%s\n", b.Name, b.Topic(), p.broker.IngressURL(b.Namespace, b.Name))
	}
	for _, t := range p.set.Triggers {
		fmt.Fprintf(tw, "    trigger %s\t%s\t→ %s\n", t.Name, filterText(t), destinationText(t.Subscriber.Ref, t.Subscriber.URI))
	}
	for _, s := range p.set.PingSources {
		fmt.Fprintf(tw, "    ping %s\t%q\t→ %s\n", s.Name, s.Schedule, destinationText(s.Sink.Ref, s.Sink.URI))
	}
	fmt.Fprintln(tw, "\n  Data")
	if p.postgres != nil {
		fmt.Fprintf(tw, "    PostgreSQL\t127.0.0.1:%d\t%s\n", p.postgres.Port, p.postgres.DataDir)
	} else {
		fmt.Fprintf(tw, "    PostgreSQL\texternal (DATABASE_URL)\t\n")
	}
	if p.redis != nil {
		fmt.Fprintf(tw, "    Redis\t127.0.0.1:%d\t%s\n", p.redis.Port, p.redis.Dir)
	} else {
		fmt.Fprintf(tw, "    Redis\texternal (REDIS_URL)\t\n")
	}
	if len(p.cfg.KafkaBrokers) > 0 {
		fmt.Fprintf(tw, "    Kafka\texternal %s\t\n", strings.Join(p.cfg.KafkaBrokers, ","))
	} else {
		fmt.Fprintf(tw, "    Kafka\tembedded, %s\t%s/kafka\n", strings.Join(p.kafka.Seeds(), ","), p.cfg.DevDir)
	}
	fmt.Fprintf(tw, "\n  Metrics\tbroker: %s/metrics; each function: <address>/metrics\n", p.adminURL)
	fmt.Fprintln(tw, "\nFunctions with scale 0 start on their first event and stop when idle. Press Ctrl-C to stop.")
}

func scale(minScale int) string {
	if minScale == 0 {
		return "0 (on demand)"
	}
	return fmt.Sprintf("%d (always up)", minScale)
}

func filterText(t manifestTrigger) string {
	if len(t.Filters) > 0 {
		return fmt.Sprintf("%d filter expression(s)", len(t.Filters))
	}
	if len(t.Attributes) == 0 {
		return "every event"
	}
	var parts []string
	for k, v := range t.Attributes {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func destinationText(ref *manifestRef, uri string) string {
	if ref == nil {
		return uri
	}
	return strings.ToLower(ref.Kind) + " " + ref.Name + uri
}

type (
	manifestTrigger = manifest.Trigger
	manifestRef     = manifest.Ref
)
