/* Subcommands of the vtrain program: each lives in tools/cmd_<name>.c and returns the process
 * exit status. Only this program exits; the library returns statuses. */
#ifndef VT_TOOLS_CMD_H
#define VT_TOOLS_CMD_H

int vt_cmd_devices(int argc, char **argv);
int vt_cmd_conformance(int argc, char **argv);
int vt_cmd_train(int argc, char **argv);
int vt_cmd_eval(int argc, char **argv);
int vt_cmd_list(int argc, char **argv);
int vt_cmd_bench(int argc, char **argv);
int vt_cmd_report(int argc, char **argv);
int vt_cmd_export(int argc, char **argv);
int vt_cmd_predict(int argc, char **argv);
int vt_cmd_download(int argc, char **argv);

#endif
