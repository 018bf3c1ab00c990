/* cmd_act.c — `fepc act`: runs a discrete agent (hidden/outcome/control
 * declarations) in an environment, thin over runtime/act.c.  Agent keys
 * (--horizon 2, --gamma 8, --policy feef, ...) override the agent block
 * through the same checks (cmd_inspect.c applies them). */
#include "cli.h"

#include "../runtime/agent.h"

int cmd_act(const Options *opt)
{
    if (!opt->env) {
        fprintf(stderr, "fepc: error: act needs --env ENV (tmaze, grid:size=5,goal=24, model, or lib.so:symbol)\n");
        return 2;
    }
    Cli cli;
    if (!cli_open(&cli, opt)) {
        cli_close(&cli);
        return 1;
    }
    ActOptions aopt = {
        .env = opt->env,
        .episodes = opt->episodes,
        .agents = opt->agents,
        .log_path = opt->log_path,
        .summary_path = opt->summary_path,
        .save_path = opt->save_path,
        .learn = true,
        .f64 = opt->f64,
    };
    int rc = act_run(&cli.c.diag, cli.c.model, &aopt, cli.engine);
    cli_close(&cli);
    return rc;
}
