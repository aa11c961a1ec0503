"""Print the TF_CONFIG of this pod of an Indexed Job (kubernetes/train-job.yaml) and exec the command.

    python tf_config.py edgeclf train /data/pack --out /runs/r1 --strategy multiworker

Reads WORKERS (the Job's parallelism), JOB_COMPLETION_INDEX (set by Kubernetes for Indexed Jobs),
SERVICE (the headless Service's name), PORT; worker i is reachable at
<job>-<i>.<service>:<port> (the pod hostname Kubernetes gives an Indexed Job's pods with a subdomain).
No dependencies beyond Python; edgeclf itself reads TF_CONFIG.
"""

import json
import os
import sys

workers = int(os.environ["WORKERS"])
index = int(os.environ["JOB_COMPLETION_INDEX"])
job, service, port = os.environ["JOB_NAME"], os.environ["SERVICE"], os.environ.get("PORT", "2222")
if not 0 <= index < workers:
    sys.exit(f"JOB_COMPLETION_INDEX {index} is outside 0..{workers - 1}")
os.environ["TF_CONFIG"] = json.dumps(
    {
        "cluster": {"worker": [f"{job}-{i}.{service}:{port}" for i in range(workers)]},
        "task": {"type": "worker", "index": index},
    }
)
print(f"TF_CONFIG={os.environ['TF_CONFIG']}", flush=True)
os.execvp(sys.argv[1], sys.argv[1:])
