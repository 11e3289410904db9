"""Face meshes for eyes: a self-contained interactive HTML viewer (plain canvas + inline JS, no
CDN, opens offline) and a static PNG render (matplotlib), each face coloured by a per-point value
(e.g. displacement from the mean face, or what a 3D model attends to)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io import atomic_path, save_text


def _face_payload(points: np.ndarray, values: np.ndarray | None, title: str) -> dict:
    pts = np.asarray(points, np.float32)
    pts = pts - pts.mean(0)
    pts = pts / (np.abs(pts).max() or 1)
    v = np.zeros(len(pts), np.float32) if values is None else np.asarray(values, np.float32)
    span = float(v.max() - v.min()) or 1.0
    return {
        "title": title,
        "points": np.round(pts, 4).tolist(),
        "values": np.round((v - v.min()) / span, 4).tolist(),
        "range": [round(float(v.min()), 4), round(float(v.max()), 4)],
    }


def mesh_html(
    path: str | Path,
    faces: Sequence[tuple[np.ndarray, np.ndarray | None, str]],
    triangles: np.ndarray,
    title: str = "fer3d face meshes",
    value_label: str = "value",
) -> Path:
    """Write an HTML page showing each (points (478,3) in image axes: x right, y down, z away from
    the camera; per-point values or None; caption) as a shaded, rotatable mesh."""
    return save_text(path, mesh_page(faces, triangles, title, value_label))


def mesh_page(
    faces: Sequence[tuple[np.ndarray, np.ndarray | None, str]],
    triangles: np.ndarray,
    title: str = "fer3d face meshes",
    value_label: str = "value",
) -> str:
    """mesh_html's page as a string (the service sends it without a file)."""
    data = {
        "triangles": np.asarray(triangles).tolist(),
        "faces": [_face_payload(*f) for f in faces],
        "valueLabel": value_label,
    }
    return _HTML.replace("__TITLE__", title).replace("__DATA__", json.dumps(data, separators=(",", ":")))


def mesh_png(
    path: str | Path,
    faces: Sequence[tuple[np.ndarray, np.ndarray | None, str]],
    triangles: np.ndarray,
    images: Sequence[np.ndarray] | None = None,
    value_label: str = "value",
) -> Path:
    """Render each face's mesh (frontal view, coloured by its values) to one PNG; with `images`,
    each mesh is drawn over its 48x48 crop."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    n = len(faces)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.6), squeeze=False)
    tri = np.asarray(triangles)
    for k, (ax, (points, values, caption)) in enumerate(zip(axes[0], faces)):
        pts = np.asarray(points, np.float32)
        v = np.zeros(len(pts)) if values is None else np.asarray(values, np.float32)
        if images is not None:
            ax.imshow(images[k], cmap="gray", extent=(0, 48, 48, 0), vmin=0, vmax=255)
        order = np.argsort(-pts[tri][:, :, 2].mean(1))  # far triangles first (z grows away)
        polys = pts[tri[order]][:, :, :2]
        colours = plt.cm.viridis((v[tri[order]].mean(1) - v.min()) / ((v.max() - v.min()) or 1))
        colours[:, 3] = 0.55 if images is not None else 1.0
        ax.add_collection(PolyCollection(polys, facecolors=colours, edgecolors=(0, 0, 0, 0.25), linewidths=0.2))
        ax.set_xlim(pts[:, 0].min() - 2, pts[:, 0].max() + 2) if images is None else ax.set_xlim(0, 48)
        ax.set_ylim(pts[:, 1].max() + 2, pts[:, 1].min() - 2) if images is None else ax.set_ylim(48, 0)
        ax.set_aspect("equal")
        ax.set_title(caption, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"colour: {value_label}", fontsize=9)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)


_HTML = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font-family:system-ui,sans-serif;margin:12px;background:#fafafa;color:#222}
.grid{display:flex;flex-wrap:wrap;gap:12px}.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px}
canvas{display:block;cursor:grab}.cap{font-size:13px;text-align:center}.hint{color:#666;font-size:13px}
</style></head><body>
<h3>__TITLE__</h3><p class="hint">Drag to rotate, wheel to zoom. Colour: <span id="lbl"></span> (dark = low, yellow = high).</p>
<div class="grid" id="grid"></div>
<script>
const DATA = __DATA__;
document.getElementById('lbl').textContent = DATA.valueLabel;
function viridis(t){const c=[[68,1,84],[59,82,139],[33,145,140],[94,201,98],[253,231,37]];
 t=Math.max(0,Math.min(1,t))*4;const i=Math.min(3,Math.floor(t)),f=t-i;
 return c[i].map((a,k)=>a+(c[i+1][k]-a)*f);}
function makeView(face){
 const card=document.createElement('div');card.className='card';
 const cv=document.createElement('canvas');cv.width=320;cv.height=340;card.appendChild(cv);
 const cap=document.createElement('div');cap.className='cap';
 cap.textContent=face.title+'  ['+face.range[0]+' .. '+face.range[1]+']';card.appendChild(cap);
 document.getElementById('grid').appendChild(card);
 const ctx=cv.getContext('2d');let yaw=0,pitch=0,zoom=1,drag=null;
 function draw(){
  ctx.fillStyle='#fff';ctx.fillRect(0,0,cv.width,cv.height);
  const cy=Math.cos(yaw),sy=Math.sin(yaw),cp=Math.cos(pitch),sp=Math.sin(pitch);
  const P=face.points.map(([x,y,z])=>{const x1=cy*x+sy*z,z1=-sy*x+cy*z;const y2=cp*y-sp*z1,z2=sp*y+cp*z1;return [x1,y2,z2];});
  const s=140*zoom,ox=cv.width/2,oy=cv.height/2;
  const tris=DATA.triangles.map(t=>{const a=P[t[0]],b=P[t[1]],c=P[t[2]];
   const u=[b[0]-a[0],b[1]-a[1],b[2]-a[2]],v=[c[0]-a[0],c[1]-a[1],c[2]-a[2]];
   const n=[u[1]*v[2]-u[2]*v[1],u[2]*v[0]-u[0]*v[2],u[0]*v[1]-u[1]*v[0]];
   const len=Math.hypot(...n)||1;return {t,z:(a[2]+b[2]+c[2])/3,shade:Math.abs(n[2]/len)};});
  tris.sort((p,q)=>q.z-p.z);
  for(const tr of tris){const [i,j,k]=tr.t;const col=viridis((face.values[i]+face.values[j]+face.values[k])/3);
   const l=0.35+0.65*tr.shade;ctx.fillStyle='rgb('+col.map(c=>Math.round(c*l)).join(',')+')';
   ctx.beginPath();ctx.moveTo(ox+s*P[i][0],oy+s*P[i][1]);ctx.lineTo(ox+s*P[j][0],oy+s*P[j][1]);
   ctx.lineTo(ox+s*P[k][0],oy+s*P[k][1]);ctx.closePath();ctx.fill();}
 }
 cv.onmousedown=e=>{drag=[e.clientX,e.clientY];};window.addEventListener('mouseup',()=>{drag=null;});
 cv.onmousemove=e=>{if(!drag)return;yaw+=(e.clientX-drag[0])*0.01;pitch+=(e.clientY-drag[1])*0.01;drag=[e.clientX,e.clientY];draw();};
 cv.onwheel=e=>{e.preventDefault();zoom*=e.deltaY<0?1.1:0.9;draw();};
 draw();
}
DATA.faces.forEach(makeView);
document.body.dataset.rendered=DATA.faces.length;
</script></body></html>
"""
