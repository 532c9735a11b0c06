package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/server"
)

func serveCmd(g *globals) *cobra.Command {
	var (
		listen, cert, key string
		insecureRemote    bool
		quiet             bool
		opt               server.Options
	)
	cmd := &cobra.Command{
		Use:   "serve [--listen 127.0.0.1:8080] [--tls-cert F --tls-key F] [--read-token-required]",
		Short: "Serve the catalog over HTTP: the JSON API under /v1 and web pages (writes need a token: strata token create)",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (cert == "") != (key == "") {
				return usageError{errors.New("--tls-cert and --tls-key go together")}
			}
			if _, _, err := net.SplitHostPort(listen); err != nil {
				return usageError{fmt.Errorf("--listen %q: give HOST:PORT (%v)", listen, err)}
			}
			if !server.IsLoopback(listen) && cert == "" && !insecureRemote {
				return usageError{fmt.Errorf("--listen %s serves other hosts without TLS: tokens would cross the network in clear text; give --tls-cert and --tls-key, or --insecure-remote if a proxy in front does TLS", listen)}
			}
			if opt.Rate < 0 || opt.MaxBody < 0 {
				return usageError{errors.New("--rate and --max-body can't be negative")}
			}
			var tlsCert tls.Certificate
			if cert != "" {
				var err error
				if tlsCert, err = tls.LoadX509KeyPair(cert, key); err != nil {
					return usageError{fmt.Errorf("--tls-cert/--tls-key: %w", err)}
				}
				opt.Secure = true
			}
			if !quiet {
				opt.Log = log.New(os.Stderr, "strata serve: ", log.LstdFlags|log.LUTC)
			}
			return g.withCatalog(func(c *catalog.Catalog) error {
				srv := &http.Server{
					Handler:           server.New(c, opt),
					ReadHeaderTimeout: 10 * time.Second,
					ReadTimeout:       30 * time.Second,
					WriteTimeout:      60 * time.Second,
					IdleTimeout:       120 * time.Second,
					MaxHeaderBytes:    16 << 10,
					ErrorLog:          opt.Log,
				}
				ln, err := net.Listen("tcp", listen)
				if err != nil {
					return err
				}
				scheme := "http"
				if cert != "" {
					scheme = "https"
					srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12}
					ln = tls.NewListener(ln, srv.TLSConfig)
				}
				// The address, so that a script that asked for port 0 can find it.
				fmt.Fprintf(os.Stderr, "strata serve: listening on %s://%s\n", scheme, ln.Addr())
				ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				errc := make(chan error, 1)
				go func() { errc <- srv.Serve(ln) }()
				select {
				case err := <-errc:
					return err
				case <-ctx.Done():
				}
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				return srv.Shutdown(sctx)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "HOST:PORT to listen on (loopback unless TLS or --insecure-remote)")
	f.StringVar(&cert, "tls-cert", "", "TLS certificate (PEM); with --tls-key the server speaks HTTPS")
	f.StringVar(&key, "tls-key", "", "TLS private key (PEM)")
	f.BoolVar(&insecureRemote, "insecure-remote", false, "allow a non-loopback --listen without TLS (a TLS proxy in front)")
	f.BoolVar(&opt.ReadTokenRequired, "read-token-required", false, "reads need a token with a read:IMAGE scope too")
	f.Int64Var(&opt.MaxBody, "max-body", 64<<10, "largest request body in bytes")
	f.Float64Var(&opt.Rate, "rate", 50, "requests per second per client address (0: no limit)")
	f.IntVar(&opt.Burst, "burst", 100, "requests a client may make at once above --rate")
	f.BoolVar(&quiet, "quiet", false, "no request log")
	return cmd
}
