/* `vtrain train`: placeholder until its issue lands; says so instead of pretending. */
#include <stdio.h>

#include "cmd.h"

int vt_cmd_train(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "vtrain train: not built yet in this version\n");
    return 2;
}
