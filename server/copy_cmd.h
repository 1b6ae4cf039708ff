/* copy_cmd.h -- `tallyd copy`: one store copied into another, verified (copy_cmd.c). */
#ifndef TALLY_SERVER_COPY_CMD_H
#define TALLY_SERVER_COPY_CMD_H

/* argv[0] is "copy"; the exit status of the command (0 only when every table was
 * copied and its count and checksum match on both sides). */
int tly_copy_main(int argc, char **argv);

#endif
