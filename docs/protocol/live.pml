/*
 * The live engine's protocol (docs/LIVE_PROTOCOL.md) as a Promela model for
 * spin 6. Run docs/protocol/check.sh to check it; it lists every run.
 *
 * Processes: the audio thread, the control thread, and three workers (one per
 * slot; a worker process "restarts" in place when the control thread replaces it).
 *
 * Abstractions
 * - A slot's futex words `request` and `response` are counters modulo SEQ.
 *   FUTEX_WAKE + FUTEX_WAIT are a guard that blocks until the word changes.
 *   Payloads are not modelled; a crash report is the `fault` bit.
 * - Time is not modelled. An owner's deadline is a branch it may take at any
 *   moment while it waits ("the deadline expired"); it covers hangs, silent
 *   deaths and healthy workers that are merely late, any number of times.
 *   Every wait of the audio thread has this branch (-DBUG removes it). The
 *   block's budget is shared: once a wait of the audio thread expired, no
 *   time is left in that block. Spin's `timeout` keyword is not used.
 * - Kill + reap + posix_spawn is one step of the control thread (ws =
 *   SPAWNING), which then waits until the fresh worker says it is ready. A
 *   killed process takes no further step, so a late answer never lands after
 *   the kill. The control thread resets the slot (response = request) at the
 *   kill: with that, 2 sequence numbers suffice in the model (the
 *   implementation does not reset, and relies on 32-bit numbers not wrapping).
 * - A worker may fail while it serves a request: crash (its handler writes a
 *   report and completes the request, then it dies), die silently, or hang:
 *   at most MAXF times in a run. The performer saves MAXSUB times.
 * - A compile error and a test run with non-finite output have the same
 *   effect (reported; the worker stays idle): one branch stands for both.
 * - The audio thread's ownership (act, backup, old) and the ghosts change only
 *   inside atomic sequences, each of which ends with `assert(ownership)`.
 *
 * Where the spec is silent, the model follows the implementation in
 * audio/src/live (an Install during a fade ends that fade at once; a new
 * version that fails during its fade gives no Swapped; the fresh worker reads
 * its baseline request number before it says it is ready) or else the safe
 * choice (the control thread waits for an idle worker; it replaces a worker
 * that crashed or hung on its own Compile/TestRun; a backup that fails too is
 * reported Failed, not promoted). The -D variants show what goes wrong with
 * the other choices:
 *   -DBUG                    the audio thread waits without a deadline
 *   -DPROMOTE_FAILED_BACKUP  a backup that failed becomes active anyway
 *   -DNO_CTL_REPLACE         control keeps a worker that crashed/hung on its Compile/TestRun
 *   -DNO_CTL_DEADLINE        control waits for a Compile/TestRun without a deadline
 *   -DREADY_FIRST            a fresh worker says ready before reading its baseline
 *   -DA2C_CAP=5              the audio -> control ring is one message too small
 */

#define NS   3      /* workers (slots) */
#define NONE 255

#ifndef START
#define START 1     /* 0: silence, three idle workers; 1: a version plays, two idle;
                       2: a version plays with a backup, one idle (as after a swap) */
#endif
#ifndef MAXSUB
#define MAXSUB 2    /* compile requests (saves) in a run */
#endif
#ifndef MAXF
#define MAXF 2      /* worker faults in a run */
#endif
#ifndef FADE
#define FADE 2      /* blocks a crossfade lasts (2: an Install can arrive during a fade) */
#endif
#ifndef A2C_CAP
#define A2C_CAP 6   /* audio -> control ring: NS Retired/Failed + NS Swapped (see check.sh) */
#endif
#ifndef C2A_CAP
#define C2A_CAP 3   /* control -> audio ring: an Install per slot at most */
#endif
#ifndef SEQ
#define SEQ 2       /* sequence numbers modulo SEQ */
#endif

/* a worker process's state */
#define UP       0  /* running: ready, serving, or waiting for a request */
#define CRASHED  1  /* crashed; its handler completed the request with a report */
#define DEAD     2  /* died without a report */
#define HUNG     2  /* to every other party, a hung worker is a dead one not yet reaped */
#define SPAWNING 4  /* killed and reaped; a fresh process is starting */

/* what an owner learns from one request */
#define NA      0
#define OK      1
#define CRASH   2   /* response == seq, with a crash report */
#define EXPIRED 3   /* the deadline passed first */
#define SKIP    4   /* not asked: no time left in the block */
#define ASKED   5   /* the request is written; the answer is awaited */

mtype = { Install, Retired, Failed, Swapped };

chan c2a = [C2A_CAP] of { mtype, byte };   /* Install(slot) */
chan a2c = [A2C_CAP] of { mtype, byte };   /* Retired(slot), Failed(slot), Swapped */

/* shared memory: one slot per worker */
byte req[NS];       /* request sequence number: only the slot's owner writes it */
byte resp[NS];      /* response sequence number: only the worker writes it */
bool fault[NS];     /* a crash report in the slot */

/* the worker processes, as the OS sees them */
byte ws[NS];        /* all UP: the engine starts the three workers before it plays */
byte nfaults;

/* ownership: for each slot, exactly one of these holds */
bool cown[NS];      /* the control thread owns it (idle, or compiling / test-running) */
bool inflight[NS];  /* it travels in an Install, Retired or Failed message */
byte act = NONE, backup = NONE, old = NONE;   /* the audio thread owns it (old: fading out) */

/* ghosts, for the properties */
bool condemned[NS]; /* an owner declared the worker failed; it is not replaced yet */
bool block_done;    /* the audio thread has finished a block (until it starts the next) */
bool creq;          /* a compile was requested (a save) and is not answered yet */
byte nsub;

#define aowns(i)      (act == i || backup == i || old == i)
#define owned_once(i) ((cown[i] + inflight[i] + aowns(i)) == 1)
#define distinct      ((act == NONE || (act != backup && act != old)) && \
                       (backup == NONE || backup != old))
#define ownership     (owned_once(0) && owned_once(1) && owned_once(2) && distinct)

/* ---- the properties (the safety run checks the assertions and end states) ---- */

#define failed(i)          (ws[i] != UP || condemned[i])
#define compile_requested  (creq)
#define compile_answered   (!creq)

/* 2. the audio thread finishes every block: block_done is true infinitely often */
ltl block_progress  { [] <> block_done }
/* 3. every compile request is answered (installed, rejected, or failed and reported) */
ltl compile_answer  { [] (compile_requested -> <> compile_answered) }
/* 4. a failed worker (crashed, dead, hung, or given up on) is replaced by a fresh one */
ltl failed_replaced { [] ((failed(0) -> <> !failed(0)) &&
                          (failed(1) -> <> !failed(1)) &&
                          (failed(2) -> <> !failed(2))) }

/* ---- one request on a slot (both owners) ---- */

/* Step 1: the payload, then request = seq (release), FUTEX_WAKE. The owner
 * never writes while its previous request is unanswered: it had the answer,
 * or it gave up on the worker, which is replaced (the slot reset) before
 * anyone writes to the slot again. */
#define put_request(s) \
  assert(req[s] == resp[s]); \
  req[s] = (req[s] + 1) % SEQ

/* Step 3: wait until response == seq (spin, then FUTEX_WAIT), or give up at
 * the deadline. Used as the first statement of an atomic sequence. */
#ifndef BUG
#define await_audio(s, r) \
  if \
  :: resp[s] == req[s] -> r = (fault[s] -> CRASH : OK) \
  :: r = EXPIRED    /* the block's deadline passed */ \
  fi
#else
/* BUG: the audio thread waits for the response with no deadline */
#define await_audio(s, r) \
  resp[s] == req[s] -> r = (fault[s] -> CRASH : OK)
#endif

#ifndef NO_CTL_DEADLINE
#define await_control(s, r) \
  if \
  :: resp[s] == req[s] -> r = (fault[s] -> CRASH : OK) \
  :: r = EXPIRED    /* 2 s for a compile; a block's time for a test run */ \
  fi
#else
/* NO_CTL_DEADLINE: the control thread waits for a compile or test run with no deadline */
#define await_control(s, r) \
  resp[s] == req[s] -> r = (fault[s] -> CRASH : OK)
#endif

/* ---- the audio thread ---- */

/* It never blocks: a message that does not fit in the ring would be lost. */
inline a2c_send(m, s) {
  assert(len(a2c) < A2C_CAP);
  a2c!m,s
}

/* Hands the slot in variable v to the control thread (Retired or Failed); v = NONE. */
inline give(m, v) {
  a2c_send(m, v);
  inflight[v] = true;
  if
  :: m == Failed -> condemned[v] = true
  :: else -> skip
  fi;
  v = NONE
}

/* The fade is over: the old active becomes the backup, the old backup is Retired. */
inline finish_fade() {
  if
  :: old != NONE ->
     if
     :: backup != NONE -> give(Retired, backup)
     :: else -> skip
     fi;
     backup = old;
     old = NONE;
     fadeleft = 0;
     a2c_send(Swapped, 0)
  :: else -> skip
  fi
}

proctype Audio()
{
  byte s, o, n, b, fadeleft;
  bool timeleft = true;

  /* no end label: the audio thread never rests; each iteration is one block */
  do
  :: atomic {
       block_done = false;
       /* 1. drain control -> audio */
       do
       :: len(c2a) > 0 ->
          c2a?Install,s;
          inflight[s] = false;
          assert(act != NONE || (backup == NONE && old == NONE));
          finish_fade();        /* an Install during a fade ends that fade first */
          if
          :: act != NONE -> old = act; fadeleft = FADE   /* copy LIVE to SHADOW; fade */
          :: else -> skip
          fi;
          act = s;
          s = 0;
          if
          :: old == NONE -> a2c_send(Swapped, 0)   /* nothing to fade from */
          :: else -> skip
          fi
       :: else -> break
       od;
       /* 2. in a fade, the old version first (on SHADOW), else the active (on LIVE) */
       if
       :: old != NONE -> put_request(old); o = ASKED
       :: old == NONE && act != NONE -> put_request(act); n = ASKED
       :: else -> skip          /* no version: silence */
       fi;
       assert(ownership)
     };

     /* the old version's answer */
     if
     :: o == ASKED ->
        atomic {
          await_audio(old, o);
          if
          :: o == OK -> skip
          :: else ->            /* a failure during a fade ends it in favour of the survivor */
             if
             :: o == EXPIRED -> timeleft = false
             :: else -> skip
             fi;
             give(Failed, old);
             fadeleft = 0;
             a2c_send(Swapped, 0)
          fi;
          /* 3. the new (active) version, on LIVE, with the time left */
          if
          :: timeleft -> put_request(act); n = ASKED
          :: else -> n = SKIP   /* fade the last frame out; nobody to blame */
          fi;
          assert(ownership)
        }
     :: else -> skip
     fi;

     /* the active version's answer */
     if
     :: n == ASKED ->
        atomic {
          await_audio(act, n);
          if
          :: n == EXPIRED -> timeleft = false
          :: else -> skip
          fi;
          /* 4. the active failed */
          if
          :: n == CRASH || n == EXPIRED ->
             if
             :: old != NONE ->  /* in a fade: the old version rendered this block; it plays on */
                give(Failed, act);
                act = old;
                old = NONE;
                fadeleft = 0
             :: else ->         /* ask the backup for the same block, with the time left */
                give(Failed, act);
                if
                :: backup != NONE && timeleft -> put_request(backup); b = ASKED
                :: backup != NONE && !timeleft ->  /* no time to ask it: fade out; it plays next block */
                   act = backup;
                   backup = NONE
                :: backup == NONE -> skip          /* fade out */
                fi
             fi
          :: else -> skip
          fi;
          assert(ownership)
        }
     :: else -> skip
     fi;

     /* the backup's answer */
     if
     :: b == ASKED ->
        atomic {
          await_audio(backup, b);
          if
          :: b == OK -> act = backup; backup = NONE
#ifdef PROMOTE_FAILED_BACKUP
          :: else -> act = backup; backup = NONE    /* "the backup, if any, becomes active" */
#else
          :: else -> give(Failed, backup)            /* it failed too: fade out */
#endif
          fi;
          assert(ownership)
        }
     :: else -> skip
     fi;

     /* 5. the fade goes on (both answered) or ends; the block is done */
     atomic {
       if
       :: old != NONE ->
          assert(o == OK && n == OK);
          fadeleft--;
          if
          :: fadeleft == 0 -> finish_fade()
          :: else -> skip
          fi
       :: else -> skip
       fi;
       o = NA; n = NA; b = NA; timeleft = true;
       assert(ownership);
       block_done = true
     }
  od
}

/* ---- the control thread ---- */

/* Kills and reaps the worker in slot x and spawns a fresh one; the caller then
 * waits until it is ready. The slot is reset: nothing is outstanding. */
inline kill_spawn(x) {
  assert(cown[x]);
  condemned[x] = true;
  ws[x] = SPAWNING;
  resp[x] = req[x];
  fault[x] = false
}

/* Takes one message from the audio thread. */
inline receive_one() {
  atomic {
    a2c?m,x;
    if
    :: m == Retired ->
       inflight[x] = false; cown[x] = true;
       assert(ws[x] == UP && req[x] == resp[x])   /* a retired backup is healthy and quiet */
    :: m == Failed ->
       inflight[x] = false; cown[x] = true;
       kill_spawn(x)
    :: m == Swapped -> skip   /* the removed site ids may be reused */
    fi;
    assert(ownership)
  };
  atomic { (m != Failed || ws[x] == UP) -> m = 0; x = 0 }   /* the fresh worker is ready */
}

proctype Control()
{
  byte s, r, m, x;

end_rest:   /* waiting for a save or a message: the control thread may rest here */
  do
  :: receive_one()
  :: atomic { len(a2c) == 0 && nsub < MAXSUB -> nsub++; creq = true };
     /* The performer saved and prepare() succeeded. An idle worker: the first
      * the control thread owns, else wait until the audio thread gives one back. */
     do
     :: atomic {
          (cown[0] || cown[1] || cown[2]) ->
          if
          :: cown[0] -> s = 0
          :: !cown[0] && cown[1] -> s = 1
          :: !cown[0] && !cown[1] -> s = 2
          fi;
          put_request(s)      /* Compile */
        };
        break
     :: !(cown[0] || cown[1] || cown[2]) -> receive_one()
     od;

     atomic {
       await_control(s, r);
       if
       :: r == OK ->
          if
          :: r = NA           /* a compile error (or the test run's NaN output): reported */
          :: put_request(s)   /* TestRun: compiled() and one block on TEST */
          fi
       :: else ->             /* it crashed or missed the deadline: replace it */
#ifndef NO_CTL_REPLACE
          kill_spawn(s)
#else
          skip
#endif
       fi
     };
     if
     :: r == OK ->
        atomic {
          await_control(s, r);
          if
          :: r == OK ->
             assert(len(c2a) < C2A_CAP);
             c2a!Install,s;
             cown[s] = false;
             inflight[s] = true
          :: else ->
#ifndef NO_CTL_REPLACE
             kill_spawn(s)
#else
             skip
#endif
          fi;
          assert(ownership)
        }
     :: else -> skip
     fi;
     /* answered: installed, rejected, or failed and reported (after the replacement is ready) */
     atomic { (r == OK || r == NA || ws[s] == UP) -> creq = false; s = 0; r = 0 }
  od
}

/* ---- a worker: the process in slot i, and the fresh ones that replace it ---- */

proctype Worker(byte i)
{
  byte seen = 0;   /* the last request taken */

end_wait:   /* waiting for a request (or dead, waiting to be reaped) */
  do
  :: atomic {      /* FUTEX_WAIT on request; read the payload; serve */
       ws[i] == UP && req[i] != seen ->
       seen = req[i];
       if
       :: resp[i] = seen                                 /* answers: response = seq, FUTEX_WAKE */
       :: nfaults < MAXF -> nfaults++;                   /* crashes: its handler reports */
          fault[i] = true; resp[i] = seen; ws[i] = CRASHED
       :: nfaults < MAXF -> nfaults++; ws[i] = DEAD      /* dies without a report */
       :: nfaults < MAXF -> nfaults++; ws[i] = HUNG      /* hangs */
       fi
     }
  :: ws[i] == SPAWNING ->   /* a fresh process in this slot starts up */
#ifdef READY_FIRST
     atomic { ws[i] = UP; condemned[i] = false };          /* says it is ready, ... */
     atomic { assert(req[i] == resp[i]); seen = req[i] }    /* ... then reads its baseline */
#else
     atomic { assert(req[i] == resp[i]); seen = req[i];     /* reads its baseline, ... */
              ws[i] = UP; condemned[i] = false }            /* ... then says it is ready */
#endif
  od
}

init {
  atomic {
#if START == 0
    cown[0] = true; cown[1] = true; cown[2] = true;
#elif START == 1
    act = 0; cown[1] = true; cown[2] = true;
#else
    act = 0; backup = 1; cown[2] = true;
#endif
    run Audio();
    run Control();
    run Worker(0);
    run Worker(1);
    run Worker(2)
  }
}
