// drone-exec: Drone's own `drone exec` (github.com/drone/drone-cli), built
// from this small module so the version stays pinned in go.mod and the
// replace directive drone-cli needs is repeated here (a replace in a
// dependency's go.mod is ignored by the go command, so `go install` of
// drone-cli itself resolves the wrong Docker client). Only the exec
// command is wired in: the tests run pipelines locally and need no server.
package main

import (
	"fmt"
	"os"

	"github.com/drone/drone-cli/drone/exec"
	"github.com/urfave/cli"
)

func main() {
	app := cli.NewApp()
	app.Name = "drone"
	app.Usage = "drone exec, pinned for drone-deps' runner tests"
	app.Commands = []cli.Command{exec.Command}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
