package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/catalog"
)

func tokenCmd(g *globals) *cobra.Command {
	return groupCmd("token", "Bearer tokens for strata serve: create (shown once), revoke, list",
		tokenCreateCmd(g), tokenRevokeCmd(g), tokenListCmd(g))
}

func tokenCreateCmd(g *globals) *cobra.Command {
	var scopes []string
	var actor string
	cmd := &cobra.Command{
		Use:   "create NAME --scope ACTION:IMAGE...",
		Short: "Create a token and print its secret once (the catalog keeps only its sha256)",
		Long: "Create a token for strata serve. ACTION is read, promote, rollback, revoke, restore, evidence or *;\n" +
			"IMAGE is an image name or *. The secret is printed once; the catalog keeps only its hash.\n" +
			"Writes made with the token are recorded with NAME as the actor.",
		Args: args(1, "a token name"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkNames("token name", a[0]); err != nil {
				return err
			}
			for _, s := range scopes {
				if err := catalog.CheckScope(s); err != nil {
					return usageError{err}
				}
			}
			if len(scopes) == 0 {
				return usageError{fmt.Errorf("token create needs at least one --scope ACTION:IMAGE (e.g. --scope promote:base-os)")}
			}
			return g.withCatalog(func(c *catalog.Catalog) error {
				secret, t, err := c.CreateToken(cmd.Context(), a[0], scopes, actor)
				if err != nil {
					return err
				}
				return g.emit(struct {
					*catalog.Token
					Secret string `json:"secret"`
				}{t, secret}, func(w *tabwriter.Writer) {
					printEsc(w, "token %s (%s) created; its secret, shown only this once:\n", t.Name, strings.Join(t.Scopes, " "))
					fmt.Fprintln(w, secret)
				})
			})
		},
	}
	cmd.Flags().StringArrayVar(&scopes, "scope", nil, "ACTION:IMAGE the token may do (repeat); e.g. promote:base-os, evidence:*")
	cmd.Flags().StringVar(&actor, "actor", defaultActor(), "who creates it, recorded with the token")
	return cmd
}

func tokenRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token: it no longer authenticates (the record stays)",
		Args:  args(1, "a token name"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkNames("token name", a[0]); err != nil {
				return err
			}
			return g.withCatalog(func(c *catalog.Catalog) error {
				t, err := c.RevokeToken(cmd.Context(), a[0])
				if err != nil {
					return err
				}
				return g.emit(t, func(w *tabwriter.Writer) { printEsc(w, "revoked token %s\n", t.Name) })
			})
		},
	}
}

func tokenListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withCatalog(func(c *catalog.Catalog) error {
				ts_, err := c.Tokens(cmd.Context())
				if err != nil {
					return err
				}
				return g.emit(ts_, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "NAME\tSCOPES\tCREATED\tBY\tSTATE")
					for _, t := range ts_ {
						state := "active"
						if t.Revoked && t.RevokedAt != nil {
							state = "revoked " + ts(*t.RevokedAt)
						}
						printEsc(w, "%s\t%s\t%s\t%s\t%s\n", t.Name, strings.Join(t.Scopes, " "), ts(t.Created), t.Actor, state)
					}
				})
			})
		},
	}
}
