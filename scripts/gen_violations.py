"""Write a CSV of generated violations in the import format: gen_violations.py N [VEHICLES] > file.csv"""
import random
import sys
from datetime import date, timedelta

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
VIN = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def vehicle(i):
    """A deterministic plate and VIN code for vehicle number i."""
    rnd = random.Random(i)
    plate = rnd.choice(PROVINCES) + rnd.choice(LETTERS) + f"{i:05d}"[-5:] + ("" if i < 100000 else rnd.choice("DF"))
    return plate, "".join(rnd.choice(VIN) for _ in range(6))


def main():
    n = int(sys.argv[1])
    vehicles = int(sys.argv[2]) if len(sys.argv) > 2 else max(1, n * 3 // 10)
    rnd = random.Random(42)
    out = sys.stdout
    out.write("notice_number,plate,vin_last6,occurred_at,location,offense_code,description,fine,points,"
              "decision_date,payable_online\n")
    start = date(2025, 1, 1)
    for k in range(n):
        plate, vin = vehicle(rnd.randrange(vehicles))
        day = start + timedelta(days=rnd.randrange(600))
        out.write(f"{2000000000000000 + k:018d},{plate},{vin},{day.isoformat()}T08:{k % 60:02d}:00+08:00,"
                  f"Road {k % 977},{1000 + k % 700},Speeding,{rnd.choice((5000, 10000, 20000, 150000))},"
                  f"{rnd.choice((0, 1, 3, 6))},{(day + timedelta(days=3)).isoformat()},{'true' if k % 50 else 'false'}\n")


if __name__ == "__main__":
    main()
