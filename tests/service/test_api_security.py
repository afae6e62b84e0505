from typing import Any
from servicekit import MODELS

def test_scratch(running: Any) -> None:
    running.publish((MODELS / "starter.yaml").read_text())
    a = running.admin
    for body in [{"lead_id": "n", "name": "a\x00b"}, {"lead_id": "n2", "attributes": {"k": "a\x00b"}}, {"lead_id": "n3", "attributes": {"k\x00": "ab"}}, {"lead_id": "big", "employees": 2**70}, {"lead_id": "big2", "employees": 2**63}]:
        try:
            r = a.put(f"/v1/leads/{body['lead_id']}", json=body)
            print(body, r.status_code, r.text[:200])
        except Exception as e:
            print(body, "EXC", e)
    import httpx
    for i in range(3):
        try:
            r = a.put("/v1/leads/nan", content=b'{"lead_id":"nan","annual_revenue":NaN}', headers={"content-type": "application/json"})
            print(r.status_code, r.text[:300]); break
        except httpx.HTTPError as e:
            print("EXC", e)
    print(a.get("/v1/leads/nan").status_code)
    print(a.get("/v1/events", params={"lead_id": "nan", "limit": -1}).status_code)
    print(a.get("/v1/events", params={"lead_id": "nan\x00"}).status_code)
    print(a.get("/v1/leads/a%00b").status_code)
    assert 0
