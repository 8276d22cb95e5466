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
 * - Time is not modelled. An owner's deadline is a branch it may take while
 *   it waits ("the deadline expired"): always while the worker cannot answer
 *   (died silently, hangs), and while a healthy worker is held up (a stall:
 *   it answers later), counted with the faults below so that runs stay
 *   finite. Every wait of the audio thread has this branch (-DBUG removes it). The
 *   active (and, in a fade, the old) worker share the block's budget: once
 *   the old one expired, the new one is not asked. The backup has its own
 *   (until 85% of the block): it is always asked when the active failed.
 *   Spin's `timeout` keyword is not used.
 * - "Late is not dead": a worker set aside after missing its deadline is
 *   checked (without waiting) at each block; after LATE_BLOCKS blocks without
 *   an answer (25 ms) it is hung: Failed.
 * - Kill + reap + posix_spawn is one step of the control thread (ws =
 *   SPAWNING), which then waits until the fresh worker says it is ready. A
 *   killed process takes no further step, so a late answer never lands after
 *   the kill. The control thread resets the slot (response = request) at the
 *   kill: with that, 2 sequence numbers suffice in the model (the
 *   implementation does not reset, and relies on 32-bit numbers not wrapping).
 * - A worker may fail while it serves a request: crash (its handler writes a
 *   report and completes the request, then it dies), die silently, or hang;
 *   faults and stalls together at most MAXF times in a run. The performer
 *   saves MAXSUB times.
 * - The audio -> control ring carries messages that must not be lost
 *   (Retired, Failed, Swapped: asserted never to find the ring full) and
 *   reports (Late), which the audio thread drops unless the ring holds fewer
 *   than REPORT_ROOM messages, keeping the rest for the former.
 * - In the safety runs the audio thread never blocks (every wait has its
 *   deadline), so "no invalid end state" rules out a total deadlock; that
 *   each party progresses is what the ltl properties say.
 * - A compile error and a test run with non-finite output have the same
 *   effect (reported; the worker stays idle): one branch stands for both.
 * - Versions: ver[slot] is the version a slot's program was compiled from
 *   (the `version` in Install, Backup and Failed's now_playing).
 * - The audio thread's ownership (act, backup, old, lateA, lateB, failing)
 *   changes only inside atomic sequences, each ending with `assert(ownership)`.
 *
 * Where the spec is silent, the model follows the implementation in
 * audio/src/live: an Install fails the late workers, ends a running fade and
 * retires the backup at once (the fading-out version is the fallback during
 * the fade); a new version that fails during its fade gives no Swapped; a
 * worker is set aside as late only outside a fade, at most two at a time; a
 * late worker that answers plays again and whoever filled in becomes the
 * backup; after every Failed the control thread backfills: it compiles the
 * version now playing into an idle worker (no test run) and sends Backup; the
 * audio thread keeps it if it has no backup and that version plays, else
 * retires it; a fresh worker reads its baseline request number before it says
 * it is ready. Otherwise it takes the safe choice: the control thread waits
 * for an idle worker; it replaces a worker that crashed or hung on its own
 * Compile/TestRun; a backup that missed its deadline too is set aside as late
 * like the active (a crashed one is Failed) rather than made active.
 * The -D variants show what goes wrong with the other choices:
 *   -DBUG                    the audio thread waits without a deadline
 *   -DPROMOTE_FAILED_BACKUP  a backup that failed becomes active anyway (what
 *                            rt.rs did before this model found it)
 *   -DNO_CTL_REPLACE         control keeps a worker that crashed/hung on its Compile/TestRun
 *   -DNO_CTL_DEADLINE        control waits for a Compile/TestRun without a deadline
 *   -DREADY_FIRST            a fresh worker says ready before reading its baseline
 *   -DLIVE_EXCLUSIVE         asserts that no two workers run on LIVE at once. It
 *                            failed for the first design (a worker that missed its
 *                            deadline went on running on LIVE while the next one
 *                            was asked); with the taint (LIVEMEM) it holds.
 *   -DA2C_CAP=n              a smaller audio -> control ring (5 is too small)
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
#define MAXF 2      /* worker faults and stalls in a run */
#endif
#ifndef FADE
#define FADE 2      /* blocks a crossfade lasts (2: an Install can arrive during a fade) */
#endif
#ifndef LATE_BLOCKS
#define LATE_BLOCKS 2  /* blocks a late worker may take before it is hung (25 ms) */
#endif
#ifndef A2C_CAP
#define A2C_CAP 7   /* audio -> control ring: 2 * NS messages that must not be
                       lost (NS Retired/Failed, NS Swapped) + REPORT_ROOM */
#endif
#ifndef REPORT_ROOM
#define REPORT_ROOM 1  /* a report (Late) is sent only while the ring holds fewer
                          messages than this, else dropped (and counted): the
                          rest of the ring is kept for the messages that must
                          not be lost (Retired, Failed, Swapped) */
#endif
#ifndef C2A_CAP
#define C2A_CAP 3   /* control -> audio ring: an Install or Backup per slot at most */
#endif
#ifndef SEQ
#define SEQ 2       /* sequence numbers modulo SEQ */
#endif

/* a worker process's state */
#define UP       0  /* running: ready, serving, or waiting for a request */
#define CRASHED  1  /* crashed; its handler completed the request with a report */
#define DEAD     2  /* died without a report */
#ifdef LIVE_EXCLUSIVE
#define HUNG     3  /* never answers, and may go on writing its memory */
#else
#define HUNG     2  /* to every other party, a hung worker is a dead one not yet reaped */
#endif
#define SPAWNING 4  /* killed and reaped; a fresh process is starting */

/* what an owner learns from one request */
#define NA      0
#define OK      1
#define CRASH   2   /* response == seq, with a crash report */
#define EXPIRED 3   /* the deadline passed first */
#define SKIP    4   /* not asked: no time left in the block */
#define ASKED   5   /* the request is written; the answer is awaited */

/* the state memory a request runs on */
#define LIVE    1
#define OTHER   2   /* SHADOW, TEST, or none (a compile) */

mtype = { Install, Backup, Retired, Failed, Swapped, Late };

chan c2a = [C2A_CAP] of { mtype, byte, byte };   /* Install(slot, version), Backup(slot, version) */
chan a2c = [A2C_CAP] of { mtype, byte, byte };   /* Retired(slot), Failed(slot, now_playing), Swapped, Late(slot) */

/* shared memory: one slot per worker */
byte req[NS];       /* request sequence number: only the slot's owner writes it */
byte resp[NS];      /* response sequence number: only the worker writes it */
bool fault[NS];     /* a crash report in the slot */
byte ver[NS];       /* the version of the slot's program */

/* the worker processes, as the OS sees them */
byte ws[NS];        /* all UP: the engine starts the three workers before it plays */
byte nfaults;

/* ownership: for each slot, exactly one of these holds */
bool cown[NS];      /* the control thread owns it (idle, compiling, test-running) */
bool inflight[NS];  /* it travels in an Install, Backup, Retired or Failed message */
byte act = NONE, backup = NONE, old = NONE;   /* the audio thread's (old: fading out) */
byte lateA = NONE, lateB = NONE;              /* the audio thread's, set aside late */
byte failing = NONE;                          /* the audio thread's, failed in this block */

/* ghosts, for the properties */
bool condemned[NS]; /* an owner declared the worker failed; it is not replaced yet */
bool block_done;    /* the audio thread has finished a block (until it starts the next) */
bool creq;          /* a compile was requested (a save) and is not answered yet */
byte nsub;
byte nver;          /* the newest version */
byte mem[NS];       /* the memory of the slot's latest request */
/* A worker that missed its deadline on LIVE and may still write it: until it
 * answers or is killed, the playing version runs on SHADOW (OTHER), and no
 * Install (which needs SHADOW for its fade) is taken. See rt.rs `taint`. */
byte tainted = NONE;
#define LIVEMEM (tainted == NONE -> LIVE : OTHER)

#define aowns(i)      (act == i || backup == i || old == i || lateA == i || lateB == i || failing == i)
#define owned_once(i) ((cown[i] + inflight[i] + aowns(i)) == 1)
#define distinct2(a, b) (a == NONE || a != b)
#define distinct      (distinct2(act, backup) && distinct2(act, old) && distinct2(act, lateA) && \
                       distinct2(act, lateB) && distinct2(act, failing) && distinct2(backup, old) && \
                       distinct2(backup, lateA) && distinct2(backup, lateB) && distinct2(backup, failing) && \
                       distinct2(old, lateA) && distinct2(old, lateB) && distinct2(old, failing) && \
                       distinct2(lateA, lateB) && distinct2(lateA, failing) && distinct2(lateB, failing))
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

/* A worker that may still be running on LIVE: a LIVE request it has not answered. */
#define on_live(j)  (mem[j] == LIVE && req[j] != resp[j] && (ws[j] == UP || ws[j] == HUNG))
#ifdef LIVE_EXCLUSIVE
#define live_free(s) assert(s == 0 || !on_live(0)); assert(s == 1 || !on_live(1)); \
                     assert(s == 2 || !on_live(2))
#else
#define live_free(s) skip
#endif

/* Step 1: the payload, then request = seq (release), FUTEX_WAKE. The owner
 * never writes while its previous request is unanswered: it had the answer,
 * or it gave up on the worker, which is replaced (the slot reset) before
 * anyone writes to the slot again. */
#define put_request(s, m) \
  assert(req[s] == resp[s]); \
  if :: m == LIVE -> live_free(s) :: else -> skip fi; \
  mem[s] = m; \
  req[s] = (req[s] + 1) % SEQ

/* The deadline passes: always if the worker died silently or hangs; if it is
 * healthy but held up (a stall: it answers later), counted as a fault. */
#define expire(s, r) \
  (ws[s] != UP || nfaults < MAXF) -> \
     if :: ws[s] == UP -> nfaults++ :: else -> skip fi; \
     r = EXPIRED

/* Step 3: wait until response == seq (spin, then FUTEX_WAIT), or give up at
 * the deadline. Used as the first statement of an atomic sequence. */
#ifndef BUG
#define await_audio(s, r) \
  if \
  :: resp[s] == req[s] -> r = (fault[s] -> CRASH : OK) \
  :: expire(s, r)   /* the deadline passed */ \
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
  :: expire(s, r)   /* 2 s for a compile; a block's time for a test run */ \
  fi
#else
/* NO_CTL_DEADLINE: the control thread waits for a compile or test run with no deadline */
#define await_control(s, r) \
  resp[s] == req[s] -> r = (fault[s] -> CRASH : OK)
#endif

/* ---- the audio thread ---- */

#define now_playing (act != NONE -> ver[act] : NONE)

/* It never blocks: a message that does not fit in the ring would be lost. */
inline a2c_send(mt, sl, vr) {
  assert(len(a2c) < A2C_CAP);
  a2c!mt,sl,vr
}

/* Hands the slot in variable g to the control thread (Retired or Failed); g = NONE. */
inline give(mg, g) {
  assert(len(a2c) < A2C_CAP);
  a2c!mg,g,now_playing;
  inflight[g] = true;
  if
  :: mg == Failed -> condemned[g] = true
  :: else -> skip
  fi;
  g = NONE
}

/* The fade is over: the old active becomes the backup (a backup that came
 * meanwhile is Retired). */
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
     a2c_send(Swapped, 0, 0)
  :: else -> skip
  fi
}

/* A worker that missed its deadline outside a fade may only be late: set it
 * aside if there is room, else it is Failed. */
inline set_aside(w, how) {
  if
  :: how == EXPIRED && lateA == NONE -> lateA = w; w = NONE
  :: how == EXPIRED && lateA != NONE && lateB == NONE -> lateB = w; w = NONE
  :: else -> give(Failed, w)
  fi
}

/* The late worker in L, checked without waiting at the start of a block. */
inline check_late(L, age) {
  if
  :: L != NONE && resp[L] == req[L] ->
     if :: tainted == L -> tainted = NONE :: else -> skip fi;   /* it is done with LIVE */
     if
     :: fault[L] -> give(Failed, L)
     :: else ->     /* a hiccup: the newest version plays, the other is the backup */
        assert(old == NONE);
        if
        :: act != NONE && ver[act] > ver[L] ->   /* the stand-in is newer: L is the spare */
           if
           :: backup != NONE -> give(Retired, backup)
           :: else -> skip
           fi;
           backup = L
        :: else ->
           if
           :: act != NONE ->
              if
              :: backup != NONE -> give(Retired, backup)
              :: else -> skip
              fi;
              backup = act
           :: else -> skip
           fi;
           act = L
        fi;
        L = NONE;
        if                 /* a report: dropped if the ring is too full */
        :: len(a2c) < REPORT_ROOM -> a2c!Late,act,0
        :: else -> skip
        fi
     fi;
     age = 0
  :: L != NONE && resp[L] != req[L] ->
     age++;
     if
     :: age >= LATE_BLOCKS -> give(Failed, L); age = 0   /* 25 ms: it is hung */
     :: else -> skip
     fi
  :: else -> skip
  fi
}

proctype Audio()
{
  byte s, v, o, n, b, fadeleft, ageA, ageB;
  bool timeleft = true;

  /* no end label: the audio thread never rests; each iteration is one block */
  do
  :: atomic {
       block_done = false;
       /* 1. drain control -> audio */
       do
       :: tainted == NONE && c2a?[Install,_,_] ->
          c2a?Install,s,v;
          inflight[s] = false;
          assert(ver[s] == v);
          /* a new version replaces whatever was late: stop waiting for it */
          if :: lateA != NONE -> give(Failed, lateA); ageA = 0 :: else -> skip fi;
          if :: lateB != NONE -> give(Failed, lateB); ageB = 0 :: else -> skip fi;
          finish_fade();        /* an Install during a fade ends that fade first */
          if                    /* during the fade the fading-out version is the fallback */
          :: backup != NONE -> give(Retired, backup)
          :: else -> skip
          fi;
          if
          :: act != NONE -> old = act; fadeleft = FADE   /* copy LIVE to SHADOW; fade */
          :: else -> skip
          fi;
          act = s;
          s = 0; v = 0;
          if
          :: old == NONE -> a2c_send(Swapped, 0, 0)   /* nothing to fade from */
          :: else -> skip
          fi
       :: c2a?[Backup,_,_] ->
          c2a?Backup,s,v;
          inflight[s] = false;
          if
          :: backup == NONE && act != NONE && ver[act] == v -> backup = s
          :: else -> give(Retired, s)                   /* not needed (any more) */
          fi;
          s = 0; v = 0
       :: else -> break      /* empty, or an Install waiting for LIVE to be clean */
       od;
       /* 2. the late workers */
       check_late(lateA, ageA);
       check_late(lateB, ageB);
       /* 3. in a fade, the old version first (on SHADOW), else the active (on LIVE) */
       if
       :: old != NONE -> put_request(old, OTHER); o = ASKED
       :: old == NONE && act != NONE -> put_request(act, LIVEMEM); n = ASKED
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
             a2c_send(Swapped, 0, 0)
          fi;
          /* the new (active) version, on LIVE, with the time left */
          if
          :: timeleft -> put_request(act, LIVEMEM); n = ASKED
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
          :: n == CRASH || n == EXPIRED ->
             if   /* it may still be writing LIVE: the others run on a copy until it answers or dies */
             :: n == EXPIRED && mem[act] == LIVE && tainted == NONE -> tainted = act
             :: else -> skip
             fi;
             if
             :: old != NONE ->  /* in a fade: the old version rendered this block; it plays on */
                failing = act;
                act = old;
                old = NONE;
                fadeleft = 0;
                give(Failed, failing)
             :: else ->         /* the backup fills in for the same block on LIVE */
                failing = act;
                act = NONE;
                if
                :: backup != NONE -> put_request(backup, LIVEMEM); b = ASKED
                :: else ->      /* fade out */
                   set_aside(failing, n)
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
          :: else -> skip
#endif
          fi;
          set_aside(failing, n);   /* the active that failed */
          if
          :: backup != NONE ->     /* it failed too: fade out */
             if   /* a backup that missed on LIVE may still write it, like an active */
             :: b == EXPIRED && mem[backup] == LIVE && tainted == NONE -> tainted = backup
             :: else -> skip
             fi;
             set_aside(backup, b)
          :: else -> skip
          fi;
          assert(ownership)
        }
     :: else -> skip
     fi;

     /* 4. the fade goes on (both answered) or ends; the block is done */
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
       assert(ownership && failing == NONE);
       block_done = true
     }
  od
}

/* ---- the control thread ---- */

/* Kills and reaps the worker in slot x and spawns a fresh one; the caller then
 * waits until it is ready. The slot is reset: nothing is outstanding. */
inline kill_spawn(x) {
  assert(cown[x]);
  if :: tainted == x -> tainted = NONE :: else -> skip fi;   /* Killed: LIVE is clean */
  condemned[x] = true;
  ws[x] = SPAWNING;
  resp[x] = req[x];
  fault[x] = false;
  ver[x] = NONE
}

#define any_idle (cown[0] || cown[1] || cown[2])
#define first_idle (cown[0] -> 0 : (cown[1] -> 1 : 2))

/* Takes one message from the audio thread. After a Failed: replace the worker,
 * then backfill (load the version now playing into an idle worker, offer it
 * as the backup). */
inline receive_one() {
  atomic {
    a2c?m,x,y;
    if
    :: m == Retired ->
       inflight[x] = false; cown[x] = true;
       assert(ws[x] == UP && req[x] == resp[x])   /* a retired worker is healthy and quiet */
    :: m == Failed ->
       inflight[x] = false; cown[x] = true;
       kill_spawn(x)
    :: m == Swapped -> skip   /* the removed site ids may be reused */
    :: m == Late -> skip      /* reported: "answered late" */
    fi;
    assert(ownership)
  };
  if
  :: m == Failed ->
     atomic { ws[x] == UP -> skip };   /* the fresh worker is ready */
     if
     :: atomic { y != NONE && any_idle -> z = first_idle; put_request(z, OTHER) } ->   /* Compile */
        atomic {
          await_control(z, r2);
          if
          :: r2 == OK ->
             ver[z] = y;
             assert(len(c2a) < C2A_CAP);
             c2a!Backup,z,y;
             cown[z] = false;
             inflight[z] = true
          :: else ->
#ifndef NO_CTL_REPLACE
             kill_spawn(z)
#else
             skip
#endif
          fi;
          assert(ownership)
        };
        atomic { (r2 == OK || ws[z] == UP) -> z = 0; r2 = 0 }
     :: else -> skip
     fi
  :: else -> skip
  fi;
  m = 0; x = 0; y = 0
}

proctype Control()
{
  byte s, r, m, x, y, z, r2;

end_rest:   /* waiting for a save or a message: the control thread may rest here */
  do
  :: receive_one()
  :: atomic { empty(a2c) && nsub < MAXSUB -> nsub++; creq = true };
     /* The performer saved and prepare() succeeded. An idle worker: the first
      * the control thread owns, else wait until the audio thread gives one back. */
     do
     :: atomic { any_idle -> s = first_idle; put_request(s, OTHER) };   /* Compile */
        break
     :: !any_idle -> receive_one()
     od;

     atomic {
       await_control(s, r);
       if
       :: r == OK ->
          if
          :: r = NA                  /* a compile error (or the test run's NaN output): reported */
          :: put_request(s, OTHER)   /* TestRun: compiled() and one block on TEST */
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
             nver++;
             ver[s] = nver;
             assert(len(c2a) < C2A_CAP);
             c2a!Install,s,nver;
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
    ver[0] = NONE; ver[1] = NONE; ver[2] = NONE;
#if START == 0
    cown[0] = true; cown[1] = true; cown[2] = true;
#elif START == 1
    act = 0; ver[0] = 0; cown[1] = true; cown[2] = true;
#else
    act = 0; ver[0] = 1; backup = 1; ver[1] = 0; nver = 1; cown[2] = true;
#endif
    run Audio();
    run Control();
    run Worker(0);
    run Worker(1);
    run Worker(2)
  }
}
